from pathlib import Path

from chaoslab.lab.components import haproxy_config, process_specs
from chaoslab.lab.config import EtcdTimings, LabConfig, LabLayout, LeaderElection
from chaoslab.lab.install import Binaries

BINS = Binaries(etcd=Path("/b/etcd"), kube_apiserver=Path("/b/kube-apiserver"),
                kube_scheduler=Path("/b/kube-scheduler"),
                kube_controller_manager=Path("/b/kube-controller-manager"), haproxy=Path("/b/haproxy"))


def specs(**kw: object) -> dict[str, list[str]]:
    layout = LabLayout(LabConfig(state_root=Path("/s"), **kw))  # type: ignore[arg-type]
    return {p.id: p.argv for p in process_specs(layout, BINS)}


def test_every_host_runs_the_four_components_and_nodes_and_haproxy_run_in_root() -> None:
    ids = list(specs())
    assert ids[:3] == ["etcd@cp1", "etcd@cp2", "etcd@cp3"]
    for kind in ("kube-apiserver", "kube-scheduler", "kube-controller-manager"):
        assert {f"{kind}@cp{i}" for i in (1, 2, 3)} <= set(ids)
    assert "haproxy" in ids and ids[-1] == "nodes"
    assert specs()["haproxy"][0] == "/b/haproxy"


def test_host_processes_run_in_their_namespace_with_the_host_name_as_hostname() -> None:
    argv = specs()["kube-scheduler@cp2"]
    assert argv[:4] == ["ip", "netns", "exec", "chaoslab-lab-cp2"]
    # The host name is a positional argument of a fixed script, never part of the script.
    i = argv.index("-c")
    assert argv[i + 1] == 'hostname "$0" && exec "$@"' and argv[i + 2] == "cp2"
    assert argv[i + 3] == "/b/kube-scheduler"


def test_etcd_members_form_one_cluster() -> None:
    argv = specs()["etcd@cp3"]
    assert ("--initial-cluster=cp1=https://10.213.0.11:2380,cp2=https://10.213.0.12:2380,"
            "cp3=https://10.213.0.13:2380") in argv
    assert "--name=cp3" in argv and "--client-cert-auth=true" in argv and "--pre-vote=false" in argv


def test_etcd_timings_and_pre_vote_are_passed_through() -> None:
    argv = specs(etcd=EtcdTimings(heartbeat_ms=200, election_ms=2000, pre_vote=True))["etcd@cp1"]
    assert {"--heartbeat-interval=200", "--election-timeout=2000", "--pre-vote=true"} <= set(argv)


def test_leader_election_timings_are_passed_through() -> None:
    argv = specs(leader_election=LeaderElection(lease_duration=6, renew_deadline=4, retry_period=1))[
        "kube-controller-manager@cp1"]
    assert {"--leader-elect=true", "--leader-elect-lease-duration=6s", "--leader-elect-renew-deadline=4s",
            "--leader-elect-retry-period=1s", "--controllers=*,-csrsigning"} <= set(argv)


def test_no_nodes_means_no_simulator() -> None:
    assert "nodes" not in specs(nodes=0)


def test_haproxy_reaches_every_host_through_its_namespace() -> None:
    cfg = haproxy_config(LabLayout(LabConfig()))
    assert "bind 127.0.0.1:16443" in cfg
    for i in (1, 2, 3):
        assert f"server cp{i} 10.213.0.1{i}:6443 namespace chaoslab-lab-cp{i} source 10.213.0.2 check" in cfg
        assert f"server cp{i} 10.213.0.1{i}:2379 namespace chaoslab-lab-cp{i} source 10.213.0.2" in cfg


def test_controllers_wait_for_their_apiserver_before_first_start() -> None:
    layout = LabLayout(LabConfig(profile="small", state_root=Path("/s")))
    gates = {p.id: p.start_when for p in process_specs(layout, BINS)}
    assert gates["etcd@cp1"] is None
    assert gates["kube-scheduler@cp3"] == "https://127.0.0.1:16454/readyz"
