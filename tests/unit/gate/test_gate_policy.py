import json
from pathlib import Path

import pytest

from chaoslab.errors import SpecError
from chaoslab.execute.rundir import RunDir
from chaoslab.judge.gate import Policy, check_names, evaluate, near_limit, parse_fail_on, parse_margin
from chaoslab.judge.verdict import SloResult, Verdict


def slo(metric: str, measured: float | None, threshold: float, aggregate: str = "max", passed: bool | None = None,
        unit: str = "s") -> SloResult:
    if passed is None:
        passed = measured is not None and (measured >= threshold if aggregate == "min" else measured <= threshold)
    return SloResult(metric, aggregate, threshold, unit, measured, [measured], {}, passed, "evidence")


def verdict(*slos: SloResult) -> Verdict:
    return Verdict("exp", all(s.passed for s in slos), list(slos), 1)


def test_every_slo_gates_by_default() -> None:
    gate = evaluate(verdict(slo("recoveryTime", 40.0, 30.0), slo("lostWrites", 0.0, 0.0, unit="count")), Policy())
    assert [(s.result.metric, s.status, s.gating) for s in gate.slos] == [
        ("recoveryTime", "fail", True), ("lostWrites", "pass", True)]
    assert not gate.passed


def test_fail_on_named_slos_reports_the_others_without_gating() -> None:
    v = verdict(slo("recoveryTime", 40.0, 30.0), slo("lostWrites", 0.0, 0.0, unit="count"))
    gate = evaluate(v, Policy(fail_on=frozenset({"lostWrites"})))
    assert gate.passed and not v.passed
    [ignored, met] = gate.slos
    assert ignored.status == "ignored" and not ignored.gating
    assert "not gating (--fail-on lostWrites)" in ignored.note
    assert met.status == "pass" and met.gating
    assert gate.warnings == [ignored]


def test_a_met_slo_within_the_margin_warns_but_passes() -> None:
    gate = evaluate(verdict(slo("recoveryTime", 27.5, 30.0), slo("etcdTimeToNewLeader", 2.0, 3.0)),
                    Policy(warn_margin=0.1))
    assert gate.passed
    assert [s.status for s in gate.slos] == ["warn", "pass"]
    assert gate.slos[0].note == "within 10% of its limit (27.50 s of max 30 s)"


@pytest.mark.parametrize(("measured", "threshold", "aggregate", "warns"), [
    (27.0, 30.0, "max", False),   # exactly 10 % below: not within
    (27.01, 30.0, "p95", True),
    (30.0, 30.0, "max", True),    # at the limit: met, and as close as it gets
    (31.0, 30.0, "max", False),   # violated: a failure, not a warning
    (2.1, 2.0, "min", True),      # a minimum: warn just above it
    (2.3, 2.0, "min", False),
    (0.0, 0.0, "max", False),     # a zero limit never warns
    (None, 30.0, "max", False),
])
def test_near_limit(measured: float | None, threshold: float, aggregate: str, warns: bool) -> None:
    assert near_limit(slo("recoveryTime", measured, threshold, aggregate), 0.1) is warns


def test_no_margin_no_warnings() -> None:
    assert not near_limit(slo("recoveryTime", 30.0, 30.0), 0.0)


@pytest.mark.parametrize(("text", "value"), [("10%", 0.1), ("0.1", 0.1), ("0", 0.0), ("2.5%", 0.025)])
def test_margin_accepts_percent_or_fraction(text: str, value: float) -> None:
    assert parse_margin(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["ten", "100%", "1.5", "-5%"])
def test_margin_rejects_nonsense(text: str) -> None:
    with pytest.raises(SpecError, match="--warn-margin"):
        parse_margin(text)


def test_fail_on_parses_all_and_names() -> None:
    assert parse_fail_on("all") is None
    assert parse_fail_on("recoveryTime, lostWrites") == frozenset({"recoveryTime", "lostWrites"})
    with pytest.raises(SpecError, match="'recoverytime' is not an SLO metric"):
        parse_fail_on("recoverytime")
    with pytest.raises(SpecError, match="empty"):
        parse_fail_on(",")


def test_fail_on_a_metric_the_file_has_no_slo_for_is_an_error() -> None:
    check_names(Policy(frozenset({"recoveryTime"})), ["recoveryTime", "lostWrites"])
    check_names(Policy(), [])
    with pytest.raises(SpecError, match="'lostWrites' is not an SLO of this experiment file"):
        check_names(Policy(frozenset({"lostWrites"})), ["recoveryTime"])


def test_policy_round_trips_through_gate_json(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    assert run_dir.policy() == Policy()  # a run directory from before gates
    policy = Policy(frozenset({"recoveryTime", "lostWrites"}), 0.15)
    run_dir.write_policy(policy)
    assert json.loads((tmp_path / "gate.json").read_text())["failOn"] == ["lostWrites", "recoveryTime"]
    assert run_dir.policy() == policy
    assert policy.describe() == "--fail-on lostWrites,recoveryTime --warn-margin 15%"
    (tmp_path / "gate.json").write_text('{"schema": "x"}')
    with pytest.raises(SpecError, match="gate.json: cannot be read"):
        run_dir.policy()
