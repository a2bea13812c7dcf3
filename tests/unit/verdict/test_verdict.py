import json
import math

import pytest
from measure.synthetic import scheduler_kill

from chaoslab.judge.measure import Measurements, measure
from chaoslab.judge.verdict import SCHEMA, Verdict, judge, percentile, runs_needed
from chaoslab.spec.model import METRICS, Experiment, FaultSpec, SloSpec


def experiment(*slos: SloSpec, runs: int = 1) -> Experiment:
    return Experiment(name="scheduler-leader-kill", faults=(FaultSpec("kill-process", {"component": "kube-scheduler"}),),
                      duration=30.0, slos=slos, runs=runs,
                      steady_state=("apiserver-ready", "etcd-quorum", "scheduler-leader", "controller-manager-leader"))


def run(**values: float | None) -> Measurements:
    vals: dict[str, float | None] = dict.fromkeys(METRICS)
    vals.update(values)
    evidence = {k: f"evidence of {k}={v}" for k, v in vals.items()}
    return Measurements(vals, [], evidence, [], 10.0, 40.0, None, 60.0, 5.0)


def test_a_real_run_passes_and_fails_the_right_slos() -> None:
    m = measure(scheduler_kill(), experiment().steady_state, settle=5.0)
    exp = experiment(SloSpec("recoveryTime", "max", 30.0), SloSpec("schedulerLeaderElections", "max", 1.0),
                     SloSpec("schedulerTimeToNewLeader", "max", 10.0))
    v = judge(exp, [m])
    assert [(r.metric, r.measured, r.passed) for r in v.slos] == [
        ("recoveryTime", 17.0, True), ("schedulerLeaderElections", 1.0, True),
        ("schedulerTimeToNewLeader", 17.0, False)]
    assert not v.passed
    assert v.slos[2].outcome == "fail" and (v.slos[2].low, v.slos[2].high) == (16.99, 17.0)
    assert v.slos[2].message == "schedulerTimeToNewLeader: measured 16.995 s (±0.005), target ≤ max 10 s"
    assert "t=27.00 s" in v.slos[2].evidence
    assert v.runs == 1 and v.renewal_window == 5.0


def test_a_lease_only_watched_brackets_the_takeover_from_the_injection() -> None:
    # No read proves the old holder still held the Lease after the kill: the takeover lies anywhere in
    # 0–17 s, across the 10 s limit, so the samples cannot decide.
    m = measure(scheduler_kill(reads=None), experiment().steady_state, settle=5.0)
    v = judge(experiment(SloSpec("schedulerTimeToNewLeader", "max", 10.0)), [m])
    [r] = v.slos
    assert (r.outcome, r.passed, r.low, r.high, r.measured) == ("inconclusive", False, 0.0, 17.0, 17.0)
    assert r.shown == "8.50 s (±8.50)"


def test_never_recovered_fails_its_slo_as_not_measured() -> None:
    m = measure(scheduler_kill(takeover=None), experiment().steady_state, settle=5.0)
    v = judge(experiment(SloSpec("recoveryTime", "max", 30.0)), [m])
    [r] = v.slos
    assert r.measured is None and not r.passed and not v.passed
    assert r.evidence.startswith("not measured: ")
    assert "never held" in r.evidence


def test_one_unmeasured_run_fails_the_slo_even_if_others_pass() -> None:
    v = judge(experiment(SloSpec("recoveryTime", "max", 30.0), runs=3),
              [run(recoveryTime=5.0), run(recoveryTime=None), run(recoveryTime=6.0)])
    [r] = v.slos
    assert not r.passed and r.measured is None
    assert r.evidence == "not measured: run 2: evidence of recoveryTime=None"
    assert r.distribution["n"] == 2


def test_percentiles_over_five_runs() -> None:
    values = [14.0, 10.0, 30.0, 12.0, 16.0]
    exp = experiment(SloSpec("recoveryTime", "p95", 20.0), SloSpec("recoveryTime", "p50", 15.0),
                     SloSpec("recoveryTime", "max", 30.0), SloSpec("recoveryTime", "min", 11.0), runs=5)
    v = judge(exp, [run(recoveryTime=x) for x in values])
    p95, p50, worst, lowest = v.slos
    assert p95.measured == pytest.approx(16 + 0.8 * 14) and not p95.passed  # 27.2
    assert p50.measured == 14.0 and p50.passed
    assert worst.measured == 30.0 and worst.passed
    assert lowest.measured == 10.0 and not lowest.passed
    assert worst.evidence == "run 3: evidence of recoveryTime=30.0"
    assert lowest.evidence == "run 2: evidence of recoveryTime=10.0"
    assert p95.values == values
    assert p95.distribution == {"min": 10.0, "median": 14.0, "p95": 27.2, "max": 30.0, "n": 5}
    assert "at least 59 runs are needed to bound p95 with 95% confidence" in p95.confidence
    assert "ln(0.05)/ln(0.95)" in p95.confidence
    assert "5 runs suffice" not in p95.confidence and "p50 from 5 runs" in p50.confidence
    assert worst.confidence == ""


def test_percentile_is_linear_between_closest_ranks() -> None:
    assert percentile([1.0], 95) == 1.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([3.0, 1.0, 2.0, 4.0], 90) == pytest.approx(3.7)


@pytest.mark.parametrize(("p", "n"), [(50, 5), (90, 29), (95, 59), (99, 299)])
def test_zero_failure_rule(p: int, n: int) -> None:
    assert runs_needed(p) == n
    assert (p / 100) ** n <= 0.05 < (p / 100) ** (n - 1)
    assert n == math.ceil(math.log(0.05) / math.log(p / 100))


def test_min_slo_passes_at_or_above_threshold() -> None:
    v = judge(experiment(SloSpec("etcdLeaderElections", "min", 1.0)), [run(etcdLeaderElections=1.0)])
    assert v.passed and v.slos[0].unit == "count"


def test_no_slos_pass() -> None:
    v = judge(experiment(), [run()])
    assert v.passed and v.slos == []


def test_verdict_round_trips_through_json() -> None:
    exp = experiment(SloSpec("recoveryTime", "p95", 20.0, where="x.yaml:3"), SloSpec("etcdLeaderElections", "max", 0),
                     runs=2)
    v = judge(exp, [run(recoveryTime=3.0, etcdLeaderElections=0.0), run(recoveryTime=None, etcdLeaderElections=1.0)])
    data = json.loads(json.dumps(v.to_json()))
    assert data["schema"] == SCHEMA == "chaoslab.io/verdict/v1"
    assert Verdict.from_json(data) == v
    with pytest.raises(ValueError, match="not a chaoslab verdict"):
        Verdict.from_json({**data, "schema": "other/v9"})


def test_a_ratio_is_shown_as_a_fraction_and_a_percentage() -> None:
    from chaoslab.judge.verdict import format_value

    assert METRICS["apiReadErrorRate"] == "ratio"
    assert format_value(0.0274, "ratio") == "0.0274 (2.7%)"
    assert format_value(None, "ratio") == "not measured"
