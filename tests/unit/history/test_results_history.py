"""Results history: run directories in the format `chaoslab run` writes, listed and compared; a planted
regression is flagged (exit 1), run-to-run noise is not, and the statistics match textbook values."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from chaoslab.cli import main
from chaoslab.errors import SpecError
from chaoslab.judge import stats
from chaoslab.judge.verdict import SloResult, Verdict
from chaoslab.ops.history import compare, scan, select
from chaoslab.reports import json_report

METRIC = "schedulerTimeToNewLeader"


def make_run(root: Path, day: int, values: list[float | None], experiment: str = "weekly",
             passed: bool = True, group: str = "") -> Path:
    """A run directory as the run session leaves it: runs/<UTC stamp>-<experiment>/ with experiment.json
    and verdict.json (schema chaoslab.io/verdict/v1, one runValues entry per repetition)."""
    d = (root / group if group else root) / f"202611{day:02d}-100000-{experiment}"
    d.mkdir(parents=True)
    (d / "experiment.json").write_text(json.dumps({"name": experiment}))
    measured = [v for v in values if v is not None]
    slo = SloResult(METRIC, "max", 30.0, "s", max(measured) if measured else None, list(values),
                    {"n": len(measured)}, passed, "")
    verdict = Verdict(experiment, passed, [slo], len(values),
                      [{METRIC: v, "recoveryTime": (v or 0) + 5.0} for v in values], 2.0)
    (d / "verdict.json").write_text(json_report.render(verdict))
    return d


def history(root: Path, base: list[float], new: list[float], experiment: str = "weekly") -> Path:
    for i, v in enumerate([*base, *new]):
        make_run(root, i + 1, [v], experiment)
    return root


NOISE = [16.1, 17.4, 15.2, 18.9, 16.7, 14.8, 19.6, 17.0, 15.9, 18.2]


def test_planted_regression_is_flagged_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history(tmp_path, NOISE[:7], [24.0, 25.5, 23.1])
    result = compare(scan(tmp_path), METRIC, experiment="weekly", last=10)
    assert result.regression and result.p_value == pytest.approx(1 / math.comb(10, 3))
    assert main(["history", "compare", METRIC, "--runs-dir", str(tmp_path), "--experiment", "weekly"]) == 1
    assert "regression: one-sided Mann–Whitney U" in capsys.readouterr().out


def test_noise_alone_is_not_a_regression(tmp_path: Path) -> None:
    history(tmp_path, NOISE[:7], NOISE[7:])
    result = compare(scan(tmp_path), METRIC, last=10)
    assert not result.regression and result.p_value is not None and result.p_value > 0.05
    assert main(["history", "compare", METRIC, "--runs-dir", str(tmp_path)]) == 0


def test_noise_rarely_flags_across_many_random_histories() -> None:
    # Same distribution before and after: the false-alarm rate stays at or below α (the test is exact).
    rng = random.Random(7)
    alarms = 0
    for _ in range(400):
        xs = [rng.gauss(17, 1.5) for _ in range(10)]
        alarms += stats.mann_whitney_greater(xs[:7], xs[7:]).p_value <= 0.05
    assert alarms / 400 <= 0.05 + 0.03


def test_an_improvement_is_not_a_regression(tmp_path: Path) -> None:
    history(tmp_path, NOISE[:7], [9.0, 8.5, 9.2])
    assert not compare(scan(tmp_path), METRIC).regression


def test_a_single_new_run_cannot_be_judged_by_mann_whitney_with_few_baseline_runs(tmp_path: Path) -> None:
    history(tmp_path, NOISE[:9], [40.0])
    result = compare(scan(tmp_path), METRIC, baseline=9)
    assert not result.regression and result.reason.startswith("cannot tell")  # 1/10 > 0.05
    mad = compare(scan(tmp_path), METRIC, test="mad")
    assert mad.regression and mad.limit is not None and 19.0 < mad.limit < 25.0
    noise = tmp_path / "noise"
    history(noise, NOISE[:9], [18.5])
    assert not compare(scan(noise), METRIC, test="mad").regression


def test_min_change_ignores_a_significant_but_negligible_shift(tmp_path: Path) -> None:
    history(tmp_path, [10.0, 10.01, 10.02, 10.03, 10.04, 10.05, 10.06], [10.2, 10.21, 10.22])
    assert compare(scan(tmp_path), METRIC).regression
    assert not compare(scan(tmp_path), METRIC, min_change=1.0).regression


def test_window_baseline_and_experiment_selection(tmp_path: Path) -> None:
    history(tmp_path, [50.0, 50.0] + NOISE[:7], [24.0, 25.5, 23.1])  # two old outliers fall out of --last 10
    make_run(tmp_path, 28, [99.0], experiment="other")
    with pytest.raises(SpecError, match="several experiments"):
        compare(scan(tmp_path), METRIC)
    result = compare(scan(tmp_path), METRIC, experiment="weekly", last=10)
    assert [v for _, v in result.baseline] == NOISE[:7] and [v for _, v in result.candidate] == [24.0, 25.5, 23.1]
    result = compare(scan(tmp_path), METRIC, experiment="weekly", last=12, baseline=9)
    assert len(result.baseline) == 9


def test_runs_that_did_not_measure_or_were_not_judged_are_skipped(tmp_path: Path) -> None:
    history(tmp_path, NOISE[:7], [24.0, 25.5, 23.1])
    make_run(tmp_path, 25, [None])
    broken = tmp_path / "20261126-100000-weekly"
    broken.mkdir()
    (broken / "experiment.json").write_text(json.dumps({"name": "weekly"}))
    records = scan(tmp_path)
    assert [r.verdict for r in records][-2:] == ["pass", "not judged"]
    result = compare(records, METRIC)
    assert result.regression and len(result.skipped) == 2


def test_too_few_runs_or_unknown_metric_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history(tmp_path, [16.0, 17.0], [18.0])
    with pytest.raises(SpecError, match="baseline of at least 2"):
        compare(scan(tmp_path), METRIC)
    assert main(["history", "compare", "noSuchMetric", "--runs-dir", str(tmp_path)]) == 2
    assert "unknown metric" in capsys.readouterr().err


def test_repetitions_count_as_their_median_and_game_day_runs_are_found(tmp_path: Path) -> None:
    make_run(tmp_path, 1, [10.0, 30.0, 12.0], group="20261101-090000-weekly-gameday")
    make_run(tmp_path, 2, [11.0])
    records = scan(tmp_path)
    assert [r.group for r in records] == ["20261101-090000-weekly-gameday", ""]
    assert records[0].value(METRIC) == 12.0 and records[0].runs == 3
    assert [r.time.day for r in select(records, "weekly", last=1)] == [2]


def test_history_lists_runs_with_verdicts_and_key_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_run(tmp_path, 1, [16.0])
    make_run(tmp_path, 2, [31.0], passed=False)
    make_run(tmp_path, 3, [15.0], experiment="other")
    assert main(["history", "--runs-dir", str(tmp_path), "--experiment", "weekly"]) == 0
    text = capsys.readouterr().out
    assert "2026-11-01 10:00" in text and "FAIL" in text and "pass" in text
    assert "31.00 s" in text and "other" not in text
    assert main(["history", "list", "--runs-dir", str(tmp_path), "--last", "1"]) == 0
    assert "other" in capsys.readouterr().out
    assert main(["history", "--runs-dir", str(tmp_path / "nowhere")]) == 2


# ---- the statistics ----------------------------------------------------------------------------------
def test_exact_p_values_match_the_textbook() -> None:
    # Complete separation: 1 / C(n+m, m).
    assert stats.mann_whitney_greater([1, 2, 3], [4, 5]).p_value == pytest.approx(0.1)
    # U = 0 (all candidates below): every arrangement is at least as large.
    assert stats.mann_whitney_greater([4, 5, 6], [1, 2]).p_value == 1.0
    # n = m = 4, U = 14 of 16: P(U >= 14) = P(U <= 2) = 4/70 = 0.057 (Mann & Whitney 1947, table I).
    assert stats.mann_whitney_greater([1, 2, 3, 6], [4, 5, 8, 9]).p_value == pytest.approx(4 / 70)
    # Ties only: no evidence at all.
    assert stats.mann_whitney_greater([1, 1, 1], [1, 1]).p_value == 1.0


def test_normal_approximation_agrees_with_the_exact_test_for_moderate_n() -> None:
    rng = random.Random(3)
    base = [rng.gauss(0, 1) for _ in range(12)]
    cand = [rng.gauss(0.8, 1) for _ in range(6)]
    exact = stats.mann_whitney_greater(base, cand)
    old, stats.EXACT_LIMIT = stats.EXACT_LIMIT, 0
    try:
        approx = stats.mann_whitney_greater(base, cand)
    finally:
        stats.EXACT_LIMIT = old
    assert exact.method == "exact" and approx.method == "normal"
    assert approx.p_value == pytest.approx(exact.p_value, abs=0.02)


def test_ranks_and_mad() -> None:
    assert stats.ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]
    assert stats.median([1, 9, 3]) == 3 and stats.median([1, 2, 3, 4]) == 2.5
    assert stats.mad([1, 2, 3, 4, 100]) == 1
    assert stats.mad_limit([10.0, 10.0, 10.0], floor=0.5) == pytest.approx(10 + 3 * 0.5)


def test_history_of_run_directories_written_by_the_reporting_code(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Run directories laid out by the run session's own pieces (RunDir.create, experiment.json, the saved
    timeline, assess → write_reports), from synthetic scheduler-kill timelines: the scheduler's
    takeover 14–19 s after the kill for seven runs, then 25–27 s (a planted regression)."""
    from fakes import lay_out_run
    from measure.synthetic import scheduler_kill

    from chaoslab.execute.rundir import RunDir
    from chaoslab.spec import load

    [exp] = load(Path(__file__).resolve().parents[3] / "experiments/scheduler-leader-kill.yaml")
    takeovers = [16.1, 17.4, 15.2, 18.9, 16.7, 14.8, 19.0, 25.0, 26.5, 27.0]
    for day, takeover in enumerate(takeovers, 1):
        made = RunDir.create(tmp_path, exp.name)
        # One run a day: the directory's stamp is its start time (RunDir.create stamps the current second).
        d = made.path.rename(tmp_path / f"202611{day:02d}-100000-{exp.name}")
        lay_out_run(d, exp, [scheduler_kill(takeover=10.0 + takeover)])
    records = scan(tmp_path)
    assert [r.experiment for r in records] == ["scheduler-leader-kill"] * 10
    values = [r.value(METRIC) for r in records]
    assert values == pytest.approx(takeovers, abs=2.5)  # as measured from the Lease samples (renewed every 2 s)
    result = compare(records, METRIC)
    assert result.regression and result.p_value is not None and result.p_value < 0.01
    assert not compare(records[:7], METRIC).regression
    assert main(["history", "compare", METRIC, "--runs-dir", str(tmp_path)]) == 1
    assert main(["history", "--runs-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("pass") >= 10
