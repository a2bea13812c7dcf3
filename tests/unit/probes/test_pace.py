"""Pacing: fast while a change is expected, slow when quiet (chaoslab.probes.pace, the Lease reads)."""

from measure.synthetic import build, lease

from chaoslab.probes.apiserver import ApiserverProbe
from chaoslab.probes.lease import expected_takeovers
from chaoslab.probes.pace import LEADER_ELECTED, Pace, expect_times, named_times


def test_fast_after_an_event_or_on_trouble_slow_otherwise() -> None:
    pace = Pace(slow=0.1, fast=0.015, window=5.0)
    assert pace.interval(3.0, [], trouble=False) == 0.1
    assert pace.interval(3.0, [], trouble=True) == 0.015
    assert pace.interval(12.0, [10.0], trouble=False) == 0.015
    assert pace.interval(15.0, [10.0], trouble=False) == 0.1
    assert pace.interval(9.0, [10.0], trouble=False) == 0.1  # not before the event
    assert pace.peak(3) == 200


def test_faults_into_leader_elected_components_are_not_expected_to_move_etcd() -> None:
    tl = build([(10.0, "inject", {"fault": "kill-process", "index": 0, "component": "kube-scheduler"}),
                (20.0, "revert", {"fault": "kill-process", "index": 0}),
                (30.0, "inject", {"fault": "partition", "index": 1, "component": "etcd"}),
                (40.0, "revert", {"fault": "partition", "index": 1})])
    assert expect_times(tl) == [10.0, 30.0, 20.0, 40.0]
    assert expect_times(tl, LEADER_ELECTED) == [30.0, 40.0]


def test_a_kill_that_lands_after_its_inject_event_is_expected_from_its_signal() -> None:
    tl = build([(4.0, "inject", {"fault": "kill-process", "index": 0, "component": "etcd",
                                 "targets": ["etcd@cp3"]}),
                (10.3, "signalling", {"fault": "kill-process", "index": 0, "target": "etcd@cp3"}),
                (10.4, "signalling", {"fault": "kill-process", "index": 2, "target": "etcd@cp1"}),  # another's
                (20.0, "revert", {"fault": "kill-process", "index": 0}),
                (30.0, "inject", {"fault": "partition", "index": 1, "component": "etcd", "targets": []}),
                (33.0, "rules-installing", {"fault": "partition", "index": 1, "hosts": ["cp1"]})])
    assert expect_times(tl) == [4.0, 30.0, 20.0, 10.3, 33.0]


def test_lease_reads_run_from_the_injection_until_a_new_holder_is_seen() -> None:
    names = ("kube-scheduler", "kube-controller-manager")
    recs = [lease(1.0, "kube-scheduler", "cp1_a", "r1"),
            (10.0, "inject", {"fault": "kill-process", "index": 0, "component": "kube-scheduler"})]
    assert expected_takeovers(build(recs), names, 12.0, 45.0) == ["kube-scheduler"]
    assert expected_takeovers(build(recs), names, 60.0, 45.0) == []  # the window is over
    assert expected_takeovers(build(recs), ("kube-controller-manager",), 12.0, 45.0) == []
    taken = build([*recs, lease(27.0, "kube-scheduler", "cp2_b", "r2")])
    assert expected_takeovers(taken, names, 28.0, 45.0) == []
    etcd_fault = build([lease(1.0, "kube-scheduler", "cp1_a", "r1"),
                        (10.0, "inject", {"fault": "kill-process", "index": 0, "component": "etcd"})])
    assert expected_takeovers(etcd_fault, names, 12.0, 45.0) == []


def test_an_apiserver_an_injection_names_is_sampled_at_the_load_balancers_pace() -> None:
    tl = build([(10.0, "inject", {"fault": "kill-process", "index": 0, "component": "kube-apiserver",
                                  "targets": ["kube-apiserver@cp2"]}),
                (30.0, "revert", {"fault": "kill-process", "index": 0})])
    assert named_times(tl, "kube-apiserver@cp2") == [10.0, 30.0]
    assert named_times(tl, "kube-apiserver@cp1") == []
    probe = ApiserverProbe(None, tl)  # type: ignore[arg-type]  # _step reads the timeline alone
    probe._ready = {"cp2": (20.0, False)}
    host = Pace(probe.interval, probe.host_fast_interval, probe.expect_window)
    lb = Pace(probe.interval, probe.fast_interval, probe.expect_window)
    assert probe._step("cp2", host, 11.0) == probe.fast_interval  # after its injection
    assert probe._step("cp1", host, 11.0) == probe.host_fast_interval  # a peer: its own fast pace
    assert probe._step("lb", lb, 11.0) == probe.fast_interval
    assert probe._step("cp2", host, 20.0) == probe.fast_interval  # not ready, named: lb's pace
    probe._ready = {"cp1": (20.0, False)}
    assert probe._step("cp1", host, 20.0) == probe.host_fast_interval  # not ready, not named
    assert probe._step("cp2", host, 40.0) == probe.interval  # quiet again
