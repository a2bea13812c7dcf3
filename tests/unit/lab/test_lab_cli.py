from chaoslab.cli import _lab_config, parser
from chaoslab.lab.config import EtcdTimings, LabConfig


def lab_up(*argv: str) -> LabConfig:
    return _lab_config(parser().parse_args(["lab", "up", *argv]))


def test_etcd_timing_flags_map_onto_the_lab_config() -> None:
    config = lab_up("--pre-vote", "--election-timeout", "2000", "--heartbeat-interval", "200")
    assert config.etcd == EtcdTimings(heartbeat_ms=200, election_ms=2000, pre_vote=True)


def test_without_flags_etcd_keeps_its_3_4_defaults() -> None:
    assert lab_up().etcd == EtcdTimings(heartbeat_ms=100, election_ms=1000, pre_vote=False)


def test_an_election_timeout_etcd_would_refuse_is_a_config_problem() -> None:
    problems = lab_up("--election-timeout", "400").problems()
    assert problems == [("etcd: election timeout 400 ms must be at least 5 × the heartbeat interval (100 ms) "
                         "and at most 50000 ms")]
