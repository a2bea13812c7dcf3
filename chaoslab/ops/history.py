"""Results history: the run directories under a results root (`--runs-dir`, default ./runs), read back as
records (when, which experiment, verdict, every metric of every repetition), and the comparison of one
metric across them against a baseline that flags a regression only when it is beyond run-to-run noise.
Reading files is the only I/O; the comparison is pure. Called by `chaoslab history`; see docs/history.md.

    >>> records = scan(Path("runs"))
    >>> result = compare(records, "schedulerTimeToNewLeader", experiment="weekly", last=10)
    >>> result.regression, result.p_value                                                  # doctest: +SKIP
    (False, 0.41)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chaoslab.errors import SpecError
from chaoslab.execute import rundir
from chaoslab.judge import stats
from chaoslab.spec.model import METRICS

#: `runs/20261123-151228-scheduler-leader-kill[-2]`: new_run_dir's UTC stamp.
STAMP = re.compile(r"^(\d{8}-\d{6})-")

Test = Literal["mann-whitney", "mad"]


@dataclass(frozen=True)
class RunRecord:
    """One run directory."""

    path: Path
    experiment: str
    time: dt.datetime
    """When the run started (UTC): the directory's stamp, else verdict.json's modification time."""
    passed: bool | None
    """None: not judged (the run could not be carried out, or was interrupted)."""
    runs: int
    run_values: list[dict[str, float | None]] = field(default_factory=list)
    group: str = ""
    """The enclosing directory when the run lies one level deeper (a game day's experiments)."""

    @property
    def verdict(self) -> str:
        return "not judged" if self.passed is None else "pass" if self.passed else "FAIL"

    def value(self, metric: str) -> float | None:
        """The metric for this run directory: the median over its repetitions (None if none measured it).
        The median, not the worst: a directory with more repetitions must not look worse for that alone."""
        values = [float(v) for r in self.run_values if (v := r.get(metric)) is not None]
        return stats.median(values) if values else None


def _time(path: Path, fallback: Path) -> dt.datetime:
    if m := STAMP.match(path.name):
        return dt.datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(fallback.stat().st_mtime, dt.UTC)


def read_run(path: Path, group: str = "") -> RunRecord | None:
    """A run directory as a record; None when `path` is not one (no experiment.json nor verdict.json)."""
    verdict_file, experiment_file = path / rundir.VERDICT, path / rundir.EXPERIMENT
    if verdict_file.is_file():
        try:
            data = json.loads(verdict_file.read_text())
            runs = [{k: (float(v) if isinstance(v, int | float) else None) for k, v in r.items()}
                    for r in data.get("runValues", [])]
            return RunRecord(path, str(data["experiment"]), _time(path, verdict_file), bool(data["passed"]),
                             int(data.get("runs", len(runs))), runs, group)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
    if experiment_file.is_file():
        try:
            name = str(json.loads(experiment_file.read_text())["name"])
        except (ValueError, KeyError, TypeError):
            name = path.name
        return RunRecord(path, name, _time(path, experiment_file), None, 0, [], group)
    return None


def scan(root: Path) -> list[RunRecord]:
    """Every run directory under `root` and one level deeper (a game day's directory holding its
    experiments' run directories), oldest first."""
    if not root.is_dir():
        raise SpecError([f"{root}: no such results directory; pass --runs-dir (where `chaoslab run` put them)"])
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if rec := read_run(d):
            out.append(rec)
            continue
        for sub in sorted(p for p in d.iterdir() if p.is_dir()):
            if rec := read_run(sub, group=d.name):
                out.append(rec)
    return sorted(out, key=lambda r: (r.time, str(r.path)))


def select(records: Iterable[RunRecord], experiment: str | None = None, last: int | None = None) -> list[RunRecord]:
    chosen = [r for r in records if experiment is None or r.experiment == experiment]
    return chosen[-last:] if last else chosen


@dataclass(frozen=True)
class Comparison:
    """A metric of the newest runs against the baseline of the runs before them."""

    metric: str
    unit: str
    test: Test
    baseline: list[tuple[RunRecord, float]]
    candidate: list[tuple[RunRecord, float]]
    skipped: list[RunRecord]
    """Runs of the window that did not measure the metric (not judged, or no value)."""
    regression: bool
    p_value: float | None
    """Mann–Whitney only."""
    limit: float | None
    """MAD rule only: median + k × 1.4826 × MAD of the baseline."""
    baseline_median: float
    candidate_median: float
    reason: str
    """One sentence: what was tested and what it found (or why it could not tell)."""


def compare(records: Sequence[RunRecord], metric: str, *, experiment: str | None = None, last: int = 10,
            baseline: int | None = None, test: Test = "mann-whitney", alpha: float = 0.05, k: float = 3.0,
            min_change: float = 0.0) -> Comparison:
    """Compare `metric` over the last `last` judged runs (of `experiment`, if given). The first `baseline`
    of them (default: all but the newest 3 for Mann–Whitney, all but the newest 1 for the MAD rule) are the
    baseline; the rest are the candidate. Higher is worse for every chaoslab metric, so the test is
    one-sided. `min_change`: a regression must also raise the median by at least this much (in the
    metric's unit), so a significant but negligible shift is not flagged."""
    if metric not in METRICS:
        raise SpecError([f"unknown metric {metric!r}; one of: {', '.join(METRICS)}"])
    if last < 2:
        raise SpecError([f"--last {last}: comparing needs at least 2 runs"])
    window = select(records, experiment, None)
    names = sorted({r.experiment for r in window})
    if experiment is None and len(names) > 1:
        raise SpecError([f"the runs hold several experiments ({', '.join(names)}); name one with --experiment"])
    measured: list[tuple[RunRecord, float]] = []
    skipped: list[RunRecord] = []
    for r in window:
        v = r.value(metric)
        if v is None:
            skipped.append(r)
        else:
            measured.append((r, v))
    measured = measured[-last:]
    if measured:
        skipped = [r for r in skipped if r.time >= measured[0][0].time]
    n_base = baseline if baseline is not None else len(measured) - (3 if test == "mann-whitney" else 1)
    if n_base < 2 or n_base >= len(measured):
        what = f"{experiment!r}" if experiment else "the runs"
        raise SpecError([(f"{metric}: {len(measured)} run(s) of {what} measured it; a comparison needs a baseline "
                          f"of at least 2 runs and at least 1 run after it (got baseline {n_base}); "
                          f"add runs or set --last/--baseline")])
    base, cand = measured[:n_base], measured[n_base:]
    bv, cv = [v for _, v in base], [v for _, v in cand]
    b_med, c_med = stats.median(bv), stats.median(cv)
    unit = METRICS[metric]
    shift_ok = c_med - b_med >= min_change and c_med > b_med
    if test == "mann-whitney":
        u = stats.mann_whitney_greater(bv, cv)
        flagged = u.p_value <= alpha and shift_ok
        sizes = f"{len(cv)} new run(s) against {len(bv)} baseline run(s)"
        if u.min_p > alpha:
            reason = (f"cannot tell: with {sizes} the smallest p-value possible is {u.min_p:.3g} > α {alpha:g}; "
                      f"use more baseline or new runs (e.g. --baseline), or --test mad")
        else:
            verdict = "regression" if flagged else "no regression beyond run-to-run noise"
            extra = "" if shift_ok or u.p_value > alpha else f" (median change below --min-change {min_change:g})"
            reason = (f"{verdict}: one-sided Mann–Whitney U = {u.u:g}, p = {u.p_value:.3g} ({u.method}), "
                      f"α {alpha:g}, {sizes}{extra}")
        return Comparison(metric, unit, test, base, cand, skipped, flagged, u.p_value, None, b_med, c_med, reason)
    floor = max(min_change, 0.0)
    limit = stats.mad_limit(bv, k, floor=floor / k if k else 0.0)
    above = [v for v in cv if v > limit]
    flagged = bool(above) and stats.median(cv) > limit and shift_ok
    verdict = "regression" if flagged else "no regression beyond run-to-run noise"
    reason = (f"{verdict}: median of the new run(s) {c_med:.4g} against the limit median + {k:g}×1.4826×MAD "
              f"= {limit:.4g} of {len(bv)} baseline run(s)")
    return Comparison(metric, unit, test, base, cand, skipped, flagged, None, limit, b_med, c_med, reason)
