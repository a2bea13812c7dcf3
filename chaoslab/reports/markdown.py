"""`report.md`: the verdict for people reading a pull request or a CI log — one row per SLO, the recovery
phases of each run, the distribution over runs (when there are several) and every measurement with its
evidence. Called by `chaoslab.reports.write_reports`."""

from __future__ import annotations

import time

from chaoslab.judge.disruption import Drain, drains
from chaoslab.judge.gate import Gate, GatedSlo, Policy, evaluate
from chaoslab.judge.measure import Measurements
from chaoslab.judge.verdict import Verdict, format_measured, format_value
from chaoslab.spec.model import METRICS, Experiment
from chaoslab.timeline import Timeline


def cell(text: object) -> str:
    """A table cell: pipes escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def started(timeline: Timeline) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timeline.started_wall))


def drain_counts(d: Drain) -> str:
    """`3 evicted, 1 skipped` plus the PDB refusals retried on the way."""
    text = ", ".join(f"{n} {o}" for o, n in sorted(d.outcomes.items())) or "none"
    return text + (f" ({d.refusals} PDB refusals retried)" if d.refusals else "")


def drain_reasons(d: Drain) -> str:
    return "; ".join(f"{o}: {', '.join(rs)}" for o, rs in sorted(d.reasons.items())) or "–"


def result(s: GatedSlo) -> str:
    """The result cell of an SLO under its gate: `pass`, `**FAIL**`, `pass, warning: …`, `FAIL, not gating`."""
    if s.outcome == "inconclusive":
        return {"fail": f"**INCONCLUSIVE**: {s.note}", "ignored": f"inconclusive, not gating: {s.note}"}.get(
            s.status, f"⚠ inconclusive: {s.note}")
    return {"pass": "pass", "fail": "**FAIL**", "warn": f"pass, ⚠ warning: {s.note}",
            "ignored": "FAIL, not gating"}[s.status]


def headline(gate: Gate) -> str:
    """`PASS`, `FAIL`, `PASS (1 SLO violated, not gating)`, `PASS (2 warnings)`."""
    ignored = sum(s.status == "ignored" for s in gate.slos)
    undecided = sum(s.outcome == "inconclusive" for s in gate.slos)
    ignored -= sum(s.outcome == "inconclusive" and s.status == "ignored" for s in gate.slos)
    warned = sum(s.status == "warn" and s.outcome != "inconclusive" for s in gate.slos)
    notes = ([f"{ignored} SLO{'s' if ignored != 1 else ''} violated, not gating"] if ignored else []) + (
        [f"{undecided} inconclusive"] if undecided else []) + (
        [f"{warned} warning{'s' if warned != 1 else ''}"] if warned else [])
    return ("PASS" if gate.passed else "FAIL") + (f" ({', '.join(notes)})" if notes else "")


def render(experiment: Experiment, verdict: Verdict, timelines: list[Timeline],
           measurements: list[Measurements], gate: Gate | None = None) -> str:
    gate = gate or evaluate(verdict, Policy())
    out = [f"# {experiment.name}: {headline(gate)}", ""]
    if experiment.description:
        out += [experiment.description, ""]
    faults = "; ".join(f"`{f.kind}` " + ", ".join(f"{k}={v}" for k, v in f.params.items()) for f in experiment.faults)
    out += [f"- faults: {faults}, held {experiment.duration:g} s",
            f"- steady state: {', '.join(experiment.steady_state)} (settle {experiment.settle:g} s)",
            f"- runs: {verdict.runs}" + (f", first started {started(timelines[0])}" if timelines else ""), ""]

    out += ["## SLOs", ""]
    if verdict.slos:
        out += ["| SLO | target | measured | result | evidence |", "| --- | --- | --- | --- | --- |"]
        out += [f"| {s.result.metric} | {s.result.target} | {s.result.shown} | "
                f"{cell(result(s))} | {cell(s.result.evidence)} |" for s in gate.slos]
        notes = [f"- {r.metric}: {r.confidence}" for r in verdict.slos if r.confidence]
        out += ["", *notes, ""] if notes else [""]
        if gate.policy != Policy():
            out += [f"Gate: `{gate.policy.describe()}`.", ""]
    else:
        out += ["The experiment sets no SLO targets, so nothing can fail.", ""]

    if verdict.runs > 1:
        out += ["## Distribution over runs", "", "| SLO | n | min | median | p95 | max | per run |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in verdict.slos:
            d = r.distribution
            stats = [format_value(None if (v := d[k]) is None else float(v), r.unit)
                     for k in ("min", "median", "p95", "max")]
            per_run = ", ".join(format_value(v, r.unit) for v in r.values)
            out.append(f"| {r.metric} | {d['n']} | {' | '.join(stats)} | {per_run} |")
        out.append("")

    for i, m in enumerate(measurements, 1):
        title = f"Run {i}" if len(measurements) > 1 else "The run"
        out += [f"## {title}: recovery {format_measured(m.values.get('recoveryTime'), m.brackets.get('recoveryTime'), 's')}", ""]
        if delays := [e.detail for e in (timelines[i - 1].events_of("degrade") if i <= len(timelines) else [])]:
            out += [f"- delay of {d['host']}'s links: {d['delay_ms']} ± {d['jitter_ms']} ms by "
                    f"`{d['mechanism']}` on {', '.join(d['on'])}" for d in delays] + [""]
        if m.phases:
            out += ["| phase (ends when) | from | to | seconds | evidence |", "| --- | --- | --- | --- | --- |"]
            out += [f"| {p.name} | {p.start:.2f} | {p.end:.2f} | {p.seconds:.2f} | {cell(p.evidence)} |"
                    for p in m.phases]
            total = sum(p.seconds for p in m.phases)
            out += [(f"| **total** | {m.phases[0].start:.2f} | {m.phases[-1].end:.2f} | {total:.2f} | "
                    f"{'= recoveryTime' if m.values.get('recoveryTime') is not None else 'not recovered'} |"), ""]
        summary = drains(timelines[i - 1]) if i <= len(timelines) else []
        if summary:
            out += ["Drain:", "", "| node | seconds | complete | pods | reasons |", "| --- | --- | --- | --- | --- |"]
            out += [f"| {d.node} | {format_value(d.seconds, 's')} | {'yes' if d.complete else '**no**'} | "
                    f"{cell(drain_counts(d))} | {cell(drain_reasons(d))} |" for d in summary]
            out.append("")
        out += ["| metric | value | evidence |", "| --- | --- | --- |"]
        out += [f"| {name} | {format_measured(m.values.get(name), m.brackets.get(name), unit)} | {cell(m.evidence.get(name, ''))} |"
                for name, unit in METRICS.items()]
        out.append("")
    out.append("Times are seconds since the run started; definitions in docs/measurements.md.")
    return "\n".join(out) + "\n"
