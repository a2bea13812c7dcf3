"""Ground truth from the components' own logs, beside the probes' figures (chaoslab.judge.groundtruth)."""

import datetime as dt

from chaoslab.judge.groundtruth import parse_etcd_log, parse_klog_leases
from chaoslab.judge.measure import measure
from chaoslab.timeline import Timeline
from measure.synthetic import STARTED_WALL, build, etcd_kill, scheduler_kill

ETCD_LOG = """\
{"level":"info","ts":"2026-12-02T05:57:01.100Z","caller":"raft/raft.go:700","msg":"9576e40b89e4e8fe is starting a new election at term 1"}
{"level":"info","ts":"2026-12-02T05:57:02.287Z","caller":"raft/raft.go:771","msg":"9576e40b89e4e8fe became leader at term 2"}
not json: became leader at term 9
"""
KLOG = """\
I1202 05:57:15.253259   28039 leaderelection.go:253] successfully acquired lease kube-system/kube-controller-manager
I1202 05:57:15.680465   28033 leaderelection.go:253] successfully acquired lease kube-system/kube-scheduler
E1202 05:57:16.000000   28033 leaderelection.go:300] successfully acquired lease kube-system/kube-scheduler
"""


def test_etcd_log_lines_give_the_winner_its_term_and_the_millisecond() -> None:
    [r] = parse_etcd_log(ETCD_LOG, "cp1")
    assert (r.component, r.host, r.term) == ("etcd", "cp1", 2)
    assert r.wall == dt.datetime(2026, 12, 2, 5, 57, 2, 287000, tzinfo=dt.UTC).timestamp()


def test_klog_lines_are_matched_per_lease_in_local_time_of_the_given_year() -> None:
    [r] = parse_klog_leases(KLOG, "kube-scheduler", "cp2", 2026)
    assert (r.component, r.host, r.term) == ("kube-scheduler", "cp2", None)
    assert r.wall == round(dt.datetime(2026, 12, 2, 5, 57, 15, 680465).timestamp(), 6)
    assert [x.component for x in parse_klog_leases(KLOG, "kube-controller-manager", "cp1", 2026)] == [
        "kube-controller-manager"]


def with_records(tl: Timeline, *records: tuple[float, str, str, int | None]) -> Timeline:
    out = Timeline.from_records(tl.records())
    for t, component, host, term in records:
        out.sample("records", f"{component}@{host}", t=t, what="leader", component=component, host=host,
                   term=term, wall=STARTED_WALL + t)
    out.sample("records", "read", t=out.end, ok=True, error=None)
    return out


def test_the_records_stand_beside_the_measured_figures_and_agree_within_the_bracket() -> None:
    # etcd_kill: cp3 seen leading in term 3 from t=11.3 (polled every 0.1 s): the truth at 11.25 lies inside.
    m = measure(with_records(etcd_kill(), (11.25, "etcd", "cp3", 3)), ("apiserver-ready", "etcd-quorum"), 5.0)
    assert m.truth == {"etcdLeaderElections": 1.0, "etcdTimeToNewLeader": 1.25, "schedulerLeaderElections": 0.0,
                       "controllerManagerLeaderElections": 0.0}
    assert m.disagreements == []
    assert "ground truth: 1.250 s by etcd@cp3's log (term 3 at t=11.250 s) (measured +0.050 s, within the " \
           "bracket)" in m.evidence["etcdTimeToNewLeader"]


def test_a_truth_outside_the_bracket_and_a_wrong_count_are_flagged() -> None:
    m = measure(with_records(scheduler_kill(), (26.5, "kube-scheduler", "cp2", None),
                             (40.0, "kube-scheduler", "cp3", None)),
                ("apiserver-ready", "scheduler-leader"), 5.0)
    assert m.truth["schedulerTimeToNewLeader"] == 16.5 and m.values["schedulerTimeToNewLeader"] == 17.0
    assert [d.split(":")[0] for d in m.disagreements] == ["schedulerLeaderElections", "schedulerTimeToNewLeader"]
    assert "⚠ DISAGREES: outside the bracket 16.990–17.000 s" in m.evidence["schedulerTimeToNewLeader"]


def test_logs_the_target_could_not_read_give_no_ground_truth() -> None:
    """ci8, over ssh (no component logs): "0 by 0 'became leader' lines … ⚠ DISAGREES with the measured 1.0"."""
    tl = Timeline.from_records(etcd_kill().records())
    tl.sample("records", "read", t=tl.end, ok=False, error="cannot read the log of etcd on cp1",
              unread=["etcd@cp1", "etcd@cp2", "etcd@cp3"])
    m = measure(tl, ("apiserver-ready", "etcd-quorum"), 5.0)
    assert "etcdLeaderElections" not in m.truth and m.disagreements == []
    assert m.truth["schedulerLeaderElections"] == 0.0  # its logs were read: none of its lines, none measured


def test_no_records_no_ground_truth() -> None:
    m = measure(build([]), (), 5.0)
    assert m.truth == {} and m.disagreements == []


def test_a_lease_takeover_is_bounded_by_its_acquire_time_and_the_log_line() -> None:
    # The holder stamps acquireTime (26.95), the update commits (seen by the watch at 27.0), then it logs
    # (27.03): the log line is after the bracket 26.99–27.0, but [26.95, 27.03] overlaps it.
    tl = with_records(scheduler_kill(), (27.03, "kube-scheduler", "cp2", None))
    tl.sample("lease", "kube-scheduler", t=27.001, holder="cp2", identity="cp2_sched-uuid-2", renew="r",
              duration=15, acquire=dt.datetime.fromtimestamp(STARTED_WALL + 26.95, dt.UTC).isoformat())
    m = measure(tl, ("apiserver-ready", "scheduler-leader"), 5.0)
    assert m.disagreements == [] and m.truth["schedulerTimeToNewLeader"] == 17.03
    assert "after the Lease's acquireTime at 16.950 s" in m.evidence["schedulerTimeToNewLeader"]
