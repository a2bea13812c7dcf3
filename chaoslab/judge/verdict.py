"""The verdict: an experiment's SLO targets judged against the measurements of its runs. Each SLO gets the
aggregate over the runs (max → the worst run, min → the lowest, pN → the N-th percentile), the per-run
values and their distribution, pass or fail, the worst run's evidence, and for percentile targets a note
on how much N runs can say. Pure; called by the run session and `chaoslab report`; written as
`verdict.json` (schema `chaoslab.io/verdict/v1`) by `chaoslab.reports`.

    >>> verdict = judge(experiment, [measure(tl, experiment.steady_state, experiment.settle)])  # doctest: +SKIP
    >>> verdict.passed, [(r.metric, r.measured, r.passed) for r in verdict.slos]              # doctest: +SKIP
    (True, [('recoveryTime', 17.2, True)])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaoslab.judge import brackets
from chaoslab.judge.measure import Measurements
from chaoslab.spec.model import METRICS, Experiment

SCHEMA = "chaoslab.io/verdict/v1"
CONFIDENCE = 0.95
"""The confidence the percentile note asks for."""


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile with linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("percentile of no values")
    rank = p / 100 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def runs_needed(p: float, confidence: float = CONFIDENCE) -> int:
    """Runs that must all meet a target before the p-th percentile is bounded with `confidence`: if the
    true percentile were above the target, each run would exceed it with probability ≥ 1 − p/100, so all
    n runs stay under with probability ≤ (p/100)^n (the zero-failure, or "success run", rule)."""
    return math.ceil(math.log(1 - confidence) / math.log(p / 100) - 1e-9)


def confidence_note(aggregate: str, n: int) -> str:
    """What n runs can say about a percentile target ("" for max and min, which judge every run)."""
    if not aggregate.startswith("p") or n == 0:
        return ""
    p = float(aggregate[1:])
    need = runs_needed(p)
    rank = p / 100 * (n - 1)
    lo = math.floor(rank)
    above = f"{n - 1 - lo} run{'s' if n - 1 - lo != 1 else ''} above it"
    if lo == n - 1:
        base = "the worst run"
    elif rank == lo:
        base = f"the run ranked {lo + 1} of {n} ({above})"
    else:
        base = f"interpolated between the runs ranked {lo + 1} and {lo + 2} of {n} ({above})"
    of_runs = f"{n} run{'s' if n != 1 else ''}"
    rule = f"zero-failure rule: n ≥ ln({1 - CONFIDENCE:.2f})/ln({p / 100:.2f})"
    achieved = 1 - (p / 100) ** n
    if n >= need:
        return (f"{aggregate} from {of_runs} is {base}; {of_runs} all within the target bound {aggregate} with "
                f"{CONFIDENCE:.0%} confidence ({rule} = {need})")
    return (f"{aggregate} from {of_runs} is {base}; at least {need} runs are needed to bound {aggregate} with "
            f"{CONFIDENCE:.0%} confidence ({rule}); with {of_runs} within the target the confidence is only {achieved:.0%}")


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"min": None, "median": None, "p95": None, "max": None, "n": 0}
    return {"min": min(values), "median": round(percentile(values, 50), 4),
            "p95": round(percentile(values, 95), 4), "max": max(values), "n": len(values)}


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if unit == "ratio":
        return f"{value:.4g} ({value:.1%})"
    return f"{value:g}" if unit == "count" else f"{value:.2f} s"


def format_measured(value: float | None, bracket: tuple[float, float] | None, unit: str) -> str:
    """A run's value with its bracket when it has one: `1.71 s (±0.05)`, else as `format_value`."""
    if value is None or bracket is None or unit != "s":
        return format_value(value, unit)
    return brackets.show(bracket[0], bracket[1], unit)


@dataclass(frozen=True)
class SloResult:
    metric: str
    aggregate: str
    threshold: float
    unit: str
    measured: float | None
    """The aggregate over the runs; None when any run could not measure the metric."""
    values: list[float | None]
    """Per run, in run order."""
    distribution: dict[str, float | int | None]
    """min, median, p95, max over the measured runs, and n (how many were measured)."""
    passed: bool
    evidence: str
    """The worst run's evidence (or why the metric was not measured)."""
    confidence: str = ""
    where: str = ""
    low: float | None = None
    high: float | None = None
    """The bracket of `measured`: the true aggregate lies in [low, high] (the aggregate of every run's
    bracket; equal to `measured` for exact metrics). None when not measured."""
    outcome: str = ""
    """`pass` (the whole bracket meets the target), `fail` (the whole bracket violates it, or not
    measured) or `inconclusive` (the bracket straddles the limit: the samples cannot tell). `passed` is
    `outcome == "pass"`; the gate policy decides what `inconclusive` does to the exit code."""

    @property
    def inconclusive(self) -> bool:
        return self.outcome == "inconclusive"

    @property
    def shown(self) -> str:
        """The measured value for people: `1.71 s (±0.05)` with its bracket, `not measured`, `2` …"""
        if self.measured is None or self.low is None or self.high is None or self.unit != "s":
            return format_value(self.measured, self.unit)
        return brackets.show(self.low, self.high, self.unit)

    @property
    def target(self) -> str:
        """`max 30 s`, `p95 20 s`, `max 1` …"""
        return f"{self.aggregate} {self.threshold:g}{' s' if self.unit == 's' else ''}"

    @property
    def message(self) -> str:
        """One line for a failure: measured against target."""
        op = "≥" if self.aggregate == "min" else "≤"
        return f"{self.metric}: measured {self.shown}, target {op} {self.target}"

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "aggregate": self.aggregate, "threshold": self.threshold,
                "unit": self.unit, "measured": self.measured, "low": self.low, "high": self.high,
                "outcome": self.outcome, "values": list(self.values),
                "distribution": dict(self.distribution), "passed": self.passed, "evidence": self.evidence,
                "confidence": self.confidence, "where": self.where}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SloResult:
        passed = bool(data["passed"])
        return cls(data["metric"], data["aggregate"], float(data["threshold"]), data["unit"], data["measured"],
                   list(data["values"]), dict(data["distribution"]), passed, data["evidence"],
                   data.get("confidence", ""), data.get("where", ""), data.get("low", data["measured"]),
                   data.get("high", data["measured"]), data.get("outcome") or ("pass" if passed else "fail"))


@dataclass(frozen=True)
class Verdict:
    experiment: str
    passed: bool
    """Every SLO passed, its whole bracket within the target (an experiment without SLOs passes).
    An inconclusive SLO is not passed; whether it fails the run is the gate's decision."""
    slos: list[SloResult]
    runs: int = 0
    """How many runs were judged."""
    run_values: list[dict[str, float | None]] = field(default_factory=list)
    """Every metric's value, per run (for consumers that want more than the SLOs)."""
    renewal_window: float | None = None
    """The Lease renewal window the measurements used (seconds), so a rebuild judges the same way."""
    schema: str = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema, "experiment": self.experiment, "passed": self.passed,
                "slos": [r.to_json() for r in self.slos], "runs": self.runs,
                "runValues": [dict(r) for r in self.run_values],
                "renewalWindow": self.renewal_window}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a chaoslab verdict (schema {data.get('schema')!r}, expected {SCHEMA})")
        return cls(data["experiment"], bool(data["passed"]), [SloResult.from_json(r) for r in data["slos"]],
                   int(data["runs"]), [dict(r) for r in data.get("runValues", [])], data.get("renewalWindow"))


def _judge_one(metric: str, aggregate: str, threshold: float, where: str,
               runs: Sequence[Measurements]) -> SloResult:
    unit = METRICS.get(metric, "s")
    values = [m.values.get(metric) for m in runs]
    measured_values = [v for v in values if v is not None]
    dist = distribution(measured_values)
    note = confidence_note(aggregate, len(runs))

    def label(i: int) -> str:
        return f"run {i + 1}: " if len(runs) > 1 else ""

    missing = [i for i, v in enumerate(values) if v is None]
    if not runs or missing:
        ev = "; ".join(f"{label(i)}{runs[i].evidence.get(metric, 'not measured')}" for i in missing[:3])
        return SloResult(metric, aggregate, threshold, unit, None, values, dist, False,
                         f"not measured: {ev}" if runs else "not measured: no runs", note, where,
                         outcome="fail")
    present = [float(v) for v in values if v is not None]
    measured = aggregate_of(present, aggregate)
    spans = [m.brackets.get(metric, (float(v), float(v))) for m, v in zip(runs, values) if v is not None]
    low = aggregate_of([b[0] for b in spans], aggregate)
    high = aggregate_of([b[1] for b in spans], aggregate)
    outcome = brackets.outcome(low, high, aggregate, threshold)
    worst = (min if aggregate == "min" else max)(range(len(present)), key=lambda i: present[i])
    evidence = f"{label(worst)}{runs[worst].evidence.get(metric, '')}"
    if outcome == "inconclusive":
        evidence += (f" (inconclusive: the true value lies in {brackets.show(low, low, unit)}–"
                     f"{brackets.show(high, high, unit)}, which straddles the limit)")
    return SloResult(metric, aggregate, threshold, unit, measured, values, dist, outcome == "pass", evidence,
                     note, where, low, high, outcome)


def aggregate_of(values: Sequence[float], aggregate: str) -> float:
    """max, min or pN of the values (the SLO's own aggregate). Every aggregate is monotone in each value,
    so the aggregate of the runs' lows and highs brackets the aggregate of their true values."""
    if aggregate == "max":
        return max(values)
    if aggregate == "min":
        return min(values)
    return round(percentile(values, float(aggregate[1:])), 4)


def judge(experiment: Experiment, runs: Sequence[Measurements]) -> Verdict:
    """Judge every SLO of the experiment over all its runs. A metric a run could not measure fails its SLO:
    a verdict never passes on missing evidence."""
    slos = [_judge_one(s.metric, s.aggregate, s.threshold, s.where, runs) for s in experiment.slos]
    window = runs[0].renewal_window if runs else None
    return Verdict(experiment.name, all(r.passed for r in slos), slos, len(runs), [dict(m.values) for m in runs],
                   window)
