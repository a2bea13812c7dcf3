import random

import pytest

from chaoslab.judge.conditions import failing_conditions
from chaoslab.judge.measure import PHASES, measure
from chaoslab.judge.steady import condition_intervals
from chaoslab.spec.model import METRICS, STEADY_STATE_CONDITIONS

from .synthetic import (
    MEMBERS,
    build,
    etcd,
    etcd_kill,
    etcd_steady,
    inject,
    lease,
    renewing,
    revert,
    scheduler_kill,
    write,
)

CONTROL_PLANE = ("apiserver-ready", "etcd-quorum", "scheduler-leader", "controller-manager-leader")


def test_every_metric_is_measured_or_explicitly_none() -> None:
    m = measure(scheduler_kill(), CONTROL_PLANE, settle=5.0)
    assert set(m.values) == set(METRICS)
    assert set(m.evidence) == set(METRICS)
    assert all(m.evidence[k] for k in METRICS)


def test_scheduler_leader_kill_takes_17_s_to_a_new_holder() -> None:
    m = measure(scheduler_kill(), CONTROL_PLANE, settle=5.0)
    assert m.values["schedulerTimeToNewLeader"] == 17.0
    assert m.values["schedulerLeaderElections"] == 1.0
    assert m.values["controllerManagerLeaderElections"] == 0.0
    assert m.values["controllerManagerTimeToNewLeader"] is None  # no new holder: not measurable
    assert "cp2_sched-uuid-2" in m.evidence["schedulerTimeToNewLeader"]
    assert "t=27.00 s" in m.evidence["schedulerLeaderElections"]


def test_a_killed_holder_that_stops_renewing_breaks_the_steady_state_after_the_renewal_window() -> None:
    # First renewal seen at t=2.2 (the first sample is only a sighting), the last at 8.2; with a 5 s window
    # the condition fails at 13.2, long before the Lease expires.
    tl = scheduler_kill()
    held = condition_intervals(tl, "scheduler-leader", tl.end, renewal_window=5.0)
    assert held[0] == pytest.approx((2.2, 13.2))
    assert held[1] == pytest.approx((27.0, 60.0))
    m = measure(tl, CONTROL_PLANE, settle=5.0)
    assert m.values["recoveryTime"] == 17.0
    assert "broken at t=13.20 s (scheduler-leader)" in m.evidence["recoveryTime"]
    assert m.values["recoveryAfterRevert"] == 0.0  # recovered at 27, before the revert at 40


def test_a_lease_whose_renew_time_never_moves_is_not_a_leader_even_when_first_seen() -> None:
    # The holder died just before the run started: its Lease still names it until it expires.
    tl = build([lease(t, "kube-scheduler", "cp1_sched-uuid-1", "renew-before-the-run") for t in (0.2, 2.2, 4.2)])
    assert failing_conditions(tl, ["scheduler-leader"], 4.2) == ["scheduler-leader"]
    assert not condition_intervals(tl, "scheduler-leader", tl.end)


def test_scheduler_kill_phases_put_the_time_in_the_election() -> None:
    m = measure(scheduler_kill(), CONTROL_PLANE, settle=5.0)
    assert [p.name for p in m.phases] == list(PHASES)
    assert [p.seconds for p in m.phases] == [0.0, 17.0, 0.0, 0.0]
    assert "fault hit the kube-scheduler holder cp1" in m.phases[0].evidence
    assert "API stayed writable" in m.phases[2].evidence


def test_leader_lost_is_when_the_holder_changes_when_the_fault_missed_it() -> None:
    m = measure(scheduler_kill(targets_holder=False), CONTROL_PLANE, settle=5.0)
    assert [p.seconds for p in m.phases] == [17.0, 0.0, 0.0, 0.0]


def test_never_recovered_is_none_with_evidence() -> None:
    m = measure(scheduler_kill(takeover=None), CONTROL_PLANE, settle=5.0)
    assert m.values["recoveryTime"] is None
    assert m.values["recoveryAfterRevert"] is None
    assert m.values["schedulerTimeToNewLeader"] is None
    assert m.recovered is None
    assert "failing at the end: scheduler-leader" in m.evidence["recoveryTime"]
    assert m.phases[-1].reached is False
    assert m.phases[-1].end == m.end


def test_etcd_leader_kill_elects_cp3_in_term_3_after_1_3_s_without_leader() -> None:
    tl = etcd_kill(lost=10.0, no_leader=10.0, elected=11.3)
    m = measure(tl, ("etcd-quorum",), settle=2.0)
    assert m.values["etcdLeaderElections"] == 1.0
    assert m.values["etcdTimeToNewLeader"] == pytest.approx(1.3)
    assert m.values["etcdTimeWithoutLeader"] == pytest.approx(1.3)
    assert m.values["recoveryTime"] == pytest.approx(1.3)
    assert "cp1 → cp3 at t=11.30 s (term 2 → 3)" in m.evidence["etcdLeaderElections"]


def test_a_term_jump_of_two_is_one_election() -> None:
    m = measure(etcd_kill(new_term=4), ("etcd-quorum",), settle=2.0)
    assert m.values["etcdLeaderElections"] == 1.0
    assert "(term 2 → 4)" in m.evidence["etcdLeaderElections"]


def test_each_new_leader_counts_and_lagging_members_do_not() -> None:
    recs = etcd_steady(0.0, 10.0, "cp1", 2)
    recs += [inject(10.0, "etcd", "cp1")]
    recs += etcd(10.5, {"cp1": None, "cp2": ("cp2", 4), "cp3": ("cp1", 2)})  # cp3 lags behind
    recs += etcd(11.0, {"cp1": None, "cp2": ("cp2", 4), "cp3": ("cp2", 4)})
    recs += etcd(12.0, {"cp1": ("cp3", 5), "cp2": ("cp3", 5), "cp3": ("cp3", 5)})
    recs += etcd(13.0, {"cp1": ("cp3", 5), "cp2": ("cp3", 5), "cp3": ("cp3", 5)})
    m = measure(build(recs), ("etcd-quorum",), settle=0.5)
    assert m.values["etcdLeaderElections"] == 2.0
    assert m.values["etcdTimeToNewLeader"] == 0.5


def test_an_election_after_the_revert_is_a_disruptive_rejoin() -> None:
    # Leader isolation: cp2 takes over in term 3; the healed cp1 returns campaigning in term 6 and forces
    # a second election (pre-vote off).
    recs = etcd_steady(0.0, 10.0, "cp1", 2)
    recs += [inject(10.0, "etcd", "cp1")]
    recs += etcd(11.5, {"cp1": None, "cp2": ("cp2", 3), "cp3": ("cp2", 3)})
    recs += [revert(20.0)]
    recs += etcd(20.4, {"cp1": ("cp3", 7), "cp2": ("cp3", 7), "cp3": ("cp3", 7)})
    recs += etcd(21.0, {"cp1": ("cp3", 7), "cp2": ("cp3", 7), "cp3": ("cp3", 7)})
    m = measure(build(recs), ("etcd-quorum",), settle=0.5)
    assert m.values["etcdLeaderElections"] == 2.0
    assert m.values["etcdRejoinElections"] == 1.0
    assert m.evidence["etcdRejoinElections"] == "after revert at t=20.00 s: cp2 → cp3 at t=20.40 s (term 3 → 7)"


def test_rejoin_elections_need_a_revert_and_zero_is_measured() -> None:
    recs = [*etcd_steady(0.0, 10.0, "cp1", 2), inject(5.0, "etcd", "cp2")]
    assert measure(build(recs), ("etcd-quorum",), settle=0.5).values["etcdRejoinElections"] is None
    m = measure(build([*recs, revert(8.0)]), ("etcd-quorum",), settle=0.5)
    assert m.values["etcdRejoinElections"] == 0.0
    assert m.evidence["etcdRejoinElections"] == "no etcd election after revert at t=8.00 s"


def test_no_etcd_change_means_zero_elections_and_no_time_to_new_leader() -> None:
    m = measure(scheduler_kill(), CONTROL_PLANE, settle=5.0)
    assert m.values["etcdLeaderElections"] == 0.0
    assert m.values["etcdTimeWithoutLeader"] == 0.0
    assert m.values["etcdTimeToNewLeader"] is None
    assert "never changed" in m.evidence["etcdTimeToNewLeader"]


def test_phases_add_up_to_recovery_time_and_never_overlap() -> None:
    tl = etcd_kill(lb_down=(10.4, 13.0), writes_fail=(10.5, 12.5))
    m = measure(tl, ("apiserver-ready", "etcd-quorum"), settle=2.0)
    assert m.values["recoveryTime"] == pytest.approx(3.0)
    assert [p.seconds for p in m.phases] == pytest.approx([0.2, 1.1, 1.2, 0.5])
    assert sum(p.seconds for p in m.phases) == pytest.approx(m.values["recoveryTime"])
    for a, b in zip(m.phases, m.phases[1:]):
        assert a.end == b.start
    assert m.phases[0].start == m.inject and m.phases[-1].end == m.recovered
    assert m.values["apiserverUnavailable"] == pytest.approx(2.6)
    assert m.values["apiWriteUnavailable"] == pytest.approx(2.0)


def test_a_milestone_after_recovery_is_clamped_to_recovery() -> None:
    # Writes are back only at 14.5, after the steady state (which does not include writes) recovered at 13.
    tl = etcd_kill(lb_down=(10.4, 13.0), writes_fail=(10.5, 14.5))
    m = measure(tl, ("apiserver-ready", "etcd-quorum"), settle=2.0)
    assert [p.seconds for p in m.phases] == pytest.approx([0.2, 1.1, 1.7, 0.0])
    assert "clamped" in m.phases[2].evidence
    assert sum(p.seconds for p in m.phases) == pytest.approx(m.values["recoveryTime"])


def test_nothing_failing_means_recovery_zero_and_empty_phases() -> None:
    recs = etcd_steady(0.0, 30.0, "cp1", 2) + [inject(10.0, "etcd", "cp2")]
    m = measure(build(recs), ("etcd-quorum",), settle=5.0)
    assert m.values["recoveryTime"] == 0.0
    assert all(p.seconds == 0.0 for p in m.phases)
    assert "never lost" in m.phases[0].evidence


def test_a_blip_shorter_than_settle_does_not_count_as_recovered() -> None:
    recs = etcd_steady(0.0, 10.0, "cp1", 2) + [inject(10.0, "etcd", "cp1")]
    recs += etcd(10.0, dict.fromkeys(MEMBERS, (None, 3)))
    recs += etcd(11.0, dict.fromkeys(MEMBERS, ("cp2", 3)))  # holds for 1 s only
    recs += etcd(12.0, dict.fromkeys(MEMBERS, (None, 4)))
    recs += etcd_steady(13.0, 30.0, "cp3", 5)
    m = measure(build(recs), ("etcd-quorum",), settle=5.0)
    assert m.values["recoveryTime"] == 3.0
    assert m.values["etcdLeaderElections"] == 2.0
    assert m.values["etcdTimeWithoutLeader"] == pytest.approx(2.0)


def test_scheduling_latency_is_the_worst_pod_and_counts_a_never_bound_pod() -> None:
    recs = [inject(5.0, "kube-scheduler", "cp1")]
    for pod, created, bound_after in (("a", 0.0, 0.4), ("b", 6.0, 3.2), ("c", 8.0, None)):
        recs.append((created, "canary", "scheduling", {"pod": pod, "bound": False, "seconds": 0.0}))
        if bound_after is None:
            recs.append((created + 4.5, "canary", "scheduling", {"pod": pod, "bound": False, "seconds": 4.5}))
        else:
            recs.append((created + bound_after, "canary", "scheduling",
                         {"pod": pod, "bound": True, "seconds": bound_after}))
    m = measure(build(recs), (), settle=1.0)
    assert m.values["schedulingLatency"] == 4.5
    assert "c, created at t=8.00 s, never bound" in m.evidence["schedulingLatency"]


def test_metrics_without_samples_are_none() -> None:
    recs = etcd_steady(0.0, 20.0, "cp1", 2) + [inject(5.0, "etcd", "cp2")]
    m = measure(build(recs), ("etcd-quorum",), settle=1.0)
    for metric in ("apiserverUnavailable", "apiWriteUnavailable", "schedulingLatency",
                   "schedulerLeaderElections", "controllerManagerTimeToNewLeader"):
        assert m.values[metric] is None
        assert m.evidence[metric].startswith("not measured")


def test_no_injection_measures_nothing_relative_to_it() -> None:
    m = measure(build(etcd_steady(0.0, 5.0, "cp1", 2) + [write(1.0, True)]), ("etcd-quorum",), settle=1.0)
    assert m.values["recoveryTime"] is None and m.phases == []
    assert m.values["apiWriteUnavailable"] == 0.0
    assert "no fault was injected" in m.evidence["recoveryTime"]


def test_lease_acquired_after_release_is_an_election() -> None:
    recs = renewing("kube-scheduler", "cp1_a", 0.0, 10.0)
    recs += [inject(10.0, "kube-scheduler", "cp1"), lease(10.1, "kube-scheduler", None, None)]
    recs += renewing("kube-scheduler", "cp3_b", 11.0, 30.0)
    m = measure(build(recs), ("scheduler-leader",), settle=2.0)
    assert m.values["schedulerLeaderElections"] == 1.0
    assert m.values["schedulerTimeToNewLeader"] == 1.0
    assert m.values["recoveryTime"] == 1.0


def test_a_restarted_holder_on_the_same_host_is_a_new_identity() -> None:
    recs = renewing("kube-scheduler", "cp1_old", 0.0, 10.0) + [inject(10.0, "kube-scheduler", "cp1")]
    recs += renewing("kube-scheduler", "cp1_new", 25.0, 40.0)
    m = measure(build(recs), ("scheduler-leader",), settle=2.0)
    assert m.values["schedulerLeaderElections"] == 1.0
    assert m.values["schedulerTimeToNewLeader"] == 15.0


@pytest.mark.parametrize("condition", STEADY_STATE_CONDITIONS)
def test_condition_intervals_agree_with_the_live_definition(condition: str) -> None:
    tls = [scheduler_kill(), etcd_kill(lb_down=(10.4, 13.0)), _mixed()]
    rng = random.Random(7)
    for tl in tls:
        intervals = condition_intervals(tl, condition, tl.end, renewal_window=5.0)
        for _ in range(400):
            t = round(rng.uniform(0, tl.end), 3) + 0.0005  # off the sample grid
            inside = any(a <= t < b for a, b in intervals)
            assert inside == (not failing_conditions(tl, [condition], t, 5.0)), (condition, t)


def _mixed() -> object:
    """Per-host apiservers flapping and scheduling canary pods, for the cross-check."""
    recs = []
    for i, t in enumerate(x * 0.3 for x in range(100)):
        for j, host in enumerate(MEMBERS):
            recs.append((t, "apiserver", host, {"ready": (i + j) % 7 != 0, "status": 200}))
    for k, created in enumerate((1.0, 5.0, 9.0, 20.0)):
        recs.append((created, "canary", "scheduling", {"pod": f"p{k}", "bound": False, "seconds": 0.0}))
        if k != 2:
            recs.append((created + 1.5 * k, "canary", "scheduling",
                         {"pod": f"p{k}", "bound": True, "seconds": 1.5 * k}))
    recs += renewing("kube-controller-manager", "cp1_x", 0.0, 12.0, every=3.0)
    return build(recs + [(35.0, "run-end", {})])
