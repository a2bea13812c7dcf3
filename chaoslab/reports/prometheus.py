"""Prometheus metrics of finished experiments, for dashboards and alerts: verdicts, the gate, every SLO and
every measured metric per run, and the fault windows as wall-clock timestamps (Grafana draws them as
annotations). `registry` is pure and builds a `prometheus_client` registry; `write_textfile` writes it for
node_exporter's textfile collector and `push` sends it to a Pushgateway. Called by the run session for
`chaoslab run --metrics-file/--pushgateway`; the names are documented in docs/ci.md and used by
dashboards/.

Every metric carries the label `experiment`. Per-run metrics carry `run` (1, 2 …); SLO metrics carry
`slo` (the metric the SLO is about) and `aggregate` (max, min, p95 …).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from chaoslab.judge.gate import Gate
from chaoslab.judge.verdict import Verdict
from chaoslab.spec.model import METRICS
from chaoslab.timeline import Timeline

#: Every metric chaoslab exports: name → (help, labels besides `experiment`).
EXPORTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "chaoslab_run_completed": (("1 if the experiment was carried out and judged, 0 if it could not be "
                               "(aborted, unreachable target, revert failed: exit code 3)"), ()),
    "chaoslab_run_passed": ("1 if every SLO of the experiment was met", ()),
    "chaoslab_gate_passed": ("1 if no gating SLO was violated (chaoslab run --fail-on)", ()),
    "chaoslab_run_finished_timestamp_seconds": ("When the experiment's verdict was made (Unix time)", ()),
    "chaoslab_runs": ("Runs judged", ()),
    "chaoslab_slo_passed": ("1 if the SLO was met", ("slo", "aggregate")),
    "chaoslab_slo_measured": ("The SLO's aggregate over the runs (absent when not measured)",
                              ("slo", "aggregate", "unit")),
    "chaoslab_slo_measured_low": (("Lower edge of the measured aggregate's bracket: the true value lies between "
                                  "low and high (docs/measurements.md#brackets-how-far-off-a-time-can-be)"),
                                 ("slo", "aggregate", "unit")),
    "chaoslab_slo_measured_high": ("Upper edge of the measured aggregate's bracket", ("slo", "aggregate", "unit")),
    "chaoslab_slo_inconclusive": (("1 if the bracket straddles the SLO's limit: the samples cannot tell pass "
                                  "from fail (not a failure unless the gate says --inconclusive fail)"),
                                 ("slo", "aggregate")),
    "chaoslab_slo_threshold": ("The SLO's limit", ("slo", "aggregate", "unit")),
    "chaoslab_slo_warning": ("1 if the SLO was met within the warning margin of its limit", ("slo", "aggregate")),
    "chaoslab_slo_gating": ("1 if a violation of the SLO fails the gate", ("slo", "aggregate")),
    "chaoslab_metric_value": (("A measured metric of one run (docs/measurements.md), in its unit: s, count "
                              "or ratio; absent when the run could not measure it"), ("metric", "run", "unit")),
    "chaoslab_fault_start_timestamp_seconds": ("When a fault was injected (Unix time)", ("run", "fault", "index")),
    "chaoslab_fault_end_timestamp_seconds": (("When a fault was reverted (Unix time; the run's end if no "
                                             "revert was recorded)"), ("run", "fault", "index")),
}


@dataclass(frozen=True)
class Result:
    """What one experiment of a `chaoslab run` left: a verdict and gate, or the error that stopped it."""

    experiment: str
    verdict: Verdict | None = None
    gate: Gate | None = None
    timelines: Sequence[Timeline] = field(default_factory=list)
    finished: float = 0.0
    """Unix time of the verdict (or of the error)."""
    error: str = ""


def _gauges(reg: CollectorRegistry) -> dict[str, Gauge]:
    return {name: Gauge(name, doc, ("experiment", *labels), registry=reg)
            for name, (doc, labels) in EXPORTED.items()}


def fault_windows(tl: Timeline) -> list[tuple[str, int, float, float]]:
    """(fault kind, index, start, end) in Unix time for every injection of one run."""
    reverts = tl.events_of("revert")
    out = []
    for inj in tl.events_of("inject"):
        index = int(inj.detail.get("index", 0))
        end = next((r.t for r in reverts if r.t >= inj.t and int(r.detail.get("index", -1)) == index), tl.end)
        out.append((str(inj.detail.get("fault", "")), index, tl.started_wall + inj.t, tl.started_wall + end))
    return out


def registry(results: Sequence[Result]) -> CollectorRegistry:
    reg = CollectorRegistry()
    g = _gauges(reg)
    for res in results:
        exp = res.experiment
        g["chaoslab_run_completed"].labels(exp).set(0 if res.error or res.verdict is None else 1)
        g["chaoslab_run_finished_timestamp_seconds"].labels(exp).set(res.finished)
        for run, tl in enumerate(res.timelines, 1):
            for fault, index, start, end in fault_windows(tl):
                g["chaoslab_fault_start_timestamp_seconds"].labels(exp, str(run), fault, str(index)).set(start)
                g["chaoslab_fault_end_timestamp_seconds"].labels(exp, str(run), fault, str(index)).set(end)
        verdict, gate = res.verdict, res.gate
        if verdict is None or gate is None:
            continue
        g["chaoslab_run_passed"].labels(exp).set(int(verdict.passed))
        g["chaoslab_gate_passed"].labels(exp).set(int(gate.passed))
        g["chaoslab_runs"].labels(exp).set(verdict.runs)
        for s in gate.slos:
            r = s.result
            g["chaoslab_slo_passed"].labels(exp, r.metric, r.aggregate).set(int(r.passed))
            g["chaoslab_slo_warning"].labels(exp, r.metric, r.aggregate).set(int(s.status == "warn"))
            g["chaoslab_slo_gating"].labels(exp, r.metric, r.aggregate).set(int(s.gating))
            g["chaoslab_slo_threshold"].labels(exp, r.metric, r.aggregate, r.unit).set(r.threshold)
            g["chaoslab_slo_inconclusive"].labels(exp, r.metric, r.aggregate).set(int(r.inconclusive))
            if r.measured is not None:
                g["chaoslab_slo_measured"].labels(exp, r.metric, r.aggregate, r.unit).set(r.measured)
            if r.low is not None and r.high is not None:
                g["chaoslab_slo_measured_low"].labels(exp, r.metric, r.aggregate, r.unit).set(r.low)
                g["chaoslab_slo_measured_high"].labels(exp, r.metric, r.aggregate, r.unit).set(r.high)
        for run, values in enumerate(verdict.run_values, 1):
            for metric, value in values.items():
                if value is not None:
                    g["chaoslab_metric_value"].labels(exp, metric, str(run), METRICS.get(metric, "s")).set(value)
    return reg


def write_textfile(path: Path, results: Sequence[Result]) -> Path:
    """Atomically (temporary file, then rename), as node_exporter's textfile collector requires."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry(results))
    return path


def push(url: str, job: str, results: Sequence[Result], timeout: float = 10.0) -> None:
    """PUT each experiment's metrics to the Pushgateway group job/JOB/experiment/NAME, replacing that
    experiment's previous push and leaving other experiments' groups alone."""
    for res in results:
        push_to_gateway(url, job=job, registry=registry([res]), grouping_key={"experiment": res.experiment},
                        timeout=timeout)
