"""`report.html`: one self-contained page (no scripts, fonts, images or styles from anywhere else) with the
verdict, an SVG timeline chart of every run and the SLO, phase and measurement tables.

The chart has one lane per thing a person asks about during a control-plane failure: which leader each
etcd member names (a colour per leader, dark when the member is unreachable), who holds the
kube-scheduler and kube-controller-manager Leases (faded while the holder is not renewing), whether the
load-balanced and each per-host apiserver is ready, whether canary writes succeed, each etcd member's
WAL fsync time and the NOSPACE alarm (with the `etcd-metrics` probe), whether the etcd workload's writes
succeed, whether the steady state holds, and the recovery phases; the fault window is shaded and recovery marked. Called by
`chaoslab.reports.write_reports`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from html import escape

from chaoslab.judge.conditions import LEASE_OF, Interval
from chaoslab.judge.disruption import drains
from chaoslab.judge.gate import Gate, Policy, evaluate
from chaoslab.judge.measure import Measurements
from chaoslab.judge.steady import condition_intervals
from chaoslab.judge.verdict import Verdict, format_measured, format_value
from chaoslab.reports.markdown import drain_counts, drain_reasons, headline, result, started
from chaoslab.spec.model import METRICS, Experiment
from chaoslab.timeline import Sample, Timeline

#: Colour-blind-safe host colours (Paul Tol's bright and muted schemes), assigned to hosts in name order.
PALETTE = ("#4477aa", "#ee7733", "#aa3377", "#66ccee", "#ccbb44", "#332288", "#44aa99", "#882255")
READY, NOT_READY, NONE, UNREACHABLE = "#5aae61", "#d6604d", "#eeeeee", "#555555"
PHASE_COLOURS = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd")
WIDTH, LABEL, RIGHT, LANE, GAP, TOP, AXIS = 1100, 210, 20, 18, 6, 40, 30
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1140px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#2e7d32}.fail{background:#c62828}td.warn{color:#a15c00;font-weight:600}
table{border-collapse:collapse;margin:8px 0 12px;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f5f5f5}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.ok{color:#2e7d32;font-weight:600}td.bad{color:#c62828;font-weight:600}
.meta{color:#555;margin:4px 0}.note{color:#555;font-size:13px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:#333;margin:4px 0 8px}
.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px;border:1px solid #999}
svg{width:100%;height:auto;display:block}svg text{font:11px system-ui,sans-serif;fill:#222}
details{margin:8px 0}summary{cursor:pointer;color:#333}
"""

Segment = tuple[float, float, str, str, float]
"""start, end, fill colour, tooltip, opacity."""


def _segments(samples: list[Sample], end: float, state: Callable[[Sample], tuple[str, str]]) -> list[Segment]:
    """Each sample's (fill, tooltip) from its time to the next sample's, equal neighbours merged."""
    out: list[Segment] = []
    for s, nxt in zip(samples, [*samples[1:], None]):
        fill, tip = state(s)
        stop = nxt.t if nxt else end
        if out and out[-1][2:4] == (fill, tip):
            out[-1] = (out[-1][0], stop, fill, tip, 1.0)
        else:
            out.append((s.t, stop, fill, tip, 1.0))
    return out


def _hosts(timelines: Iterable[Timeline]) -> dict[str, str]:
    names: set[str] = set()
    for tl in timelines:
        for s in tl.samples:
            if s.probe in ("etcd", "apiserver") and s.subject != "lb":
                names.add(s.subject)
            for key in ("leader", "holder"):
                if s.values.get(key):
                    names.add(str(s.values[key]))
    return {h: PALETTE[i % len(PALETTE)] for i, h in enumerate(sorted(names))}


Lane = tuple[str, list[Segment]]
"""A label and its segments."""


def _lanes(tl: Timeline, m: Measurements, colours: dict[str, str]) -> list[Lane]:
    end = m.end
    lanes: list[Lane] = []
    if m.phases:
        lanes.append(("recovery phases", [(p.start, p.end, PHASE_COLOURS[i], f"{p.name}: {p.seconds:.2f} s", 1.0)
                                          for i, p in enumerate(m.phases) if p.seconds > 0]))
    ok = m.steady_state_intervals
    gaps = [(a, b) for a, b in zip([0.0, *(iv[1] for iv in ok)], [*(iv[0] for iv in ok), end]) if b > a]
    lanes.append(("steady state", sorted([(a, b, READY, "steady state holds", 1.0) for a, b in ok]
                                         + [(a, b, NOT_READY, "steady state does not hold", 1.0) for a, b in gaps])))
    return lanes + sample_lanes(tl, end, m.renewal_window, colours)


def sample_lanes(tl: Timeline, end: float, renewal_window: float, colours: dict[str, str]) -> list[Lane]:
    """The lanes drawn from probe samples alone: etcd leaders, Lease holders, apiserver readiness, canary
    writes (the game day report draws them over the whole day)."""
    lanes: list[Lane] = []
    for member in sorted({s.subject for s in tl.samples_of("etcd")}):
        def etcd_state(s: Sample, member: str = member) -> tuple[str, str]:
            v = s.values
            if not v.get("reachable"):
                return UNREACHABLE, f"{member} unreachable ({v.get('error') or 'no answer'})"
            if not v.get("leader"):
                return NONE, f"{member} names no leader (term {v.get('term')})"
            return colours.get(str(v["leader"]), "#999"), f"{member} names leader {v['leader']}, term {v.get('term')}"
        lanes.append((f"etcd {member}: leader named", _segments(tl.samples_of("etcd", member), end, etcd_state)))
    for condition, lease in LEASE_OF.items():
        samples = tl.samples_of("lease", lease)
        if not samples:
            continue
        fresh = condition_intervals(tl, condition, end, renewal_window)
        base = _segments(samples, end, lambda s: (
            (colours.get(str(s.values["holder"]), "#999"), f"held by {s.values.get('identity')}")
            if s.values.get("holder") else (NONE, "not held")))
        segments: list[Segment] = []
        for a, b, fill, tip, _ in base:
            if fill == NONE:
                segments.append((a, b, fill, tip, 1.0))
                continue
            # Faded where the holder is not renewing (a killed holder keeps its name until the Lease expires).
            segments.append((a, b, fill, f"{tip}, not renewed within {renewal_window:g} s", 0.3))
            segments += [(x, y, fill, f"{tip}, renewing", 1.0) for x, y in _overlap(fresh, a, b)]
        lanes.append((f"{lease} holder", segments))
    apiservers = sorted({s.subject for s in tl.samples_of("apiserver")}, key=lambda h: (h != "lb", h))
    for host in apiservers:
        label = "apiserver (load balancer)" if host == "lb" else f"apiserver {host}"
        lanes.append((label, _segments(tl.samples_of("apiserver", host), end, lambda s: (
            (READY, "/readyz 200") if s.values.get("ready") else (NOT_READY, f"/readyz {s.values.get('status')}")))))
    writes = tl.samples_of("canary", "write")
    if writes:
        lanes.append(("API write (canary)", _segments(writes, end, lambda s: (
            (READY, "write ok") if s.values.get("ok") else (NOT_READY, f"write failed: {s.values.get('error')}")))))
    return lanes + storage_lanes(tl, end)


#: WAL fsync mean per scrape interval → colour: under 10 ms, under 100 ms (etcd warns from 100 ms), above.
FSYNC_COLOURS = ((0.010, READY), (0.100, "#f4a582"), (float("inf"), NOT_READY))


def storage_lanes(tl: Timeline, end: float) -> list[Lane]:
    """From the `etcd-metrics` probe: each member's WAL fsync mean between two scrapes (green, amber from
    10 ms, red from 100 ms; dark while /metrics did not answer), and whether the NOSPACE alarm is active;
    from the `writes` probe, whether the etcd workload's writes succeed."""
    lanes: list[Lane] = []
    for member in sorted({s.subject for s in tl.samples_of("etcd-metrics")} - {"alarms"}):
        samples = tl.samples_of("etcd-metrics", member)
        segments: list[Segment] = []
        for prev, s, nxt in zip([None, *samples[:-1]], samples, [*samples[1:], None]):
            a, b = (prev.t if prev else s.t), s.t
            now, before = s.values.get("wal_fsync"), prev.values.get("wal_fsync") if prev else None
            if not s.values.get("reachable") or not now:
                segments.append((a, b, UNREACHABLE, f"{member} /metrics did not answer", 1.0))
            elif before and now["count"] > before["count"]:
                n, mean = now["count"] - before["count"], (now["sum"] - before["sum"]) / (now["count"] - before["count"])
                fill = next(colour for bound, colour in FSYNC_COLOURS if mean < bound)
                segments.append((a, b, fill, f"{member} WAL fsync mean {mean * 1000:.1f} ms over {n:.0f}", 1.0))
            elif before:
                segments.append((a, b, NONE, f"{member}: no WAL fsync finished", 1.0))
            if nxt is None and b < end:
                segments.append((b, end, NONE, "after the last scrape", 1.0))
        lanes.append((f"etcd {member}: WAL fsync", segments))
    alarms = tl.samples_of("etcd-metrics", "alarms")
    if alarms:
        lanes.append(("etcd NOSPACE alarm", _segments(alarms, end, lambda s: (
            (NOT_READY, "NOSPACE: " + ", ".join(m for m, a in s.values["alarms"] if a == "NOSPACE"))
            if any(a == "NOSPACE" for _, a in s.values.get("alarms") or []) else (READY, "no alarm")))))
    puts = tl.samples_of("writes", "put")
    if puts:
        lanes.append(("etcd write (workload)", _segments(puts, end, lambda s: (
            (READY, "write ok") if s.values.get("ok") else (NOT_READY, f"write failed: {s.values.get('error')}")))))
    return lanes


def _overlap(intervals: list[Interval], a: float, b: float) -> list[Interval]:
    return [(max(x, a), min(y, b)) for x, y in intervals if min(y, b) > max(x, a)]


def _step(end: float) -> float:
    return next((s for s in (0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600) if end / s <= 12), 1200.0)


def frame(lanes: list[Lane], end: float, label: str, windows: list[tuple[float, float, str]],
          tick: Callable[[float], str] = lambda t: f"{t:g} s") -> tuple[list[str], Callable[[float], float], int]:
    """The chart without its closing tag: the opening `<svg>`, the shaded fault `windows` (start, stop,
    tooltip), the time grid over [0, end] and the lanes. Returns the SVG parts, the time → x mapping and
    the y of the bottom lane's edge, for marks drawn on top."""
    plot = WIDTH - LABEL - RIGHT
    bottom = TOP + len(lanes) * (LANE + GAP)
    height = bottom + AXIS

    def x(t: float) -> float:
        return LABEL + max(0.0, min(t, end)) / end * plot

    svg = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-label="{escape(label)}">')]
    for start, stop, tip in windows:
        svg.append(f'<rect x="{x(start):.1f}" y="{TOP - 8}" width="{max(1.0, x(stop) - x(start)):.1f}" '
                   f'height="{bottom - TOP + 8}" fill="#fdb863" fill-opacity="0.35">'
                   f'<title>{escape(tip)}</title></rect>')
    step = _step(end)
    k = 0
    while k * step <= end + 1e-9:
        t = k * step
        svg.append(f'<line x1="{x(t):.1f}" y1="{TOP - 8}" x2="{x(t):.1f}" y2="{bottom}" stroke="#e4e4e4"/>'
                   f'<text x="{x(t):.1f}" y="{bottom + 16}" text-anchor="middle">{tick(t)}</text>')
        k += 1
    for i, (name, segments) in enumerate(lanes):
        y = TOP + i * (LANE + GAP)
        svg.append(f'<text x="{LABEL - 8}" y="{y + LANE - 5}" text-anchor="end">{escape(name)}</text>')
        svg.append(f'<rect x="{LABEL}" y="{y}" width="{plot}" height="{LANE}" fill="none" stroke="#ccc"/>')
        for a, b, fill, tip, opacity in segments:
            w = max(0.8, x(b) - x(a))
            svg.append(f'<rect x="{x(a):.1f}" y="{y}" width="{w:.1f}" height="{LANE}" fill="{fill}"'
                       + (f' fill-opacity="{opacity:g}"' if opacity < 1 else "")
                       + f'><title>{escape(tip)}: t={a:.2f}–{b:.2f} s</title></rect>')
            if name in ("recovery phases", "experiment") and w > 90:
                svg.append(f'<text x="{x(a) + 4:.1f}" y="{y + LANE - 5}">{escape(tip)}</text>')
    return svg, x, bottom


def chart(tl: Timeline, m: Measurements, colours: dict[str, str], run: int) -> str:
    lanes = _lanes(tl, m, colours)
    end = max(m.end, 1.0)
    windows = []
    if m.inject is not None:
        stop = m.revert if m.revert is not None else end
        windows.append((m.inject, stop, (f"fault window: inject t={m.inject:.2f} s to "
                        f"{'revert t=' + format(stop, '.2f') + ' s' if m.revert is not None else 'end'}")))
    svg, x, bottom = frame(lanes, end, f"timeline of run {run}", windows)
    if m.inject is not None:
        svg.append(f'<line x1="{x(m.inject):.1f}" y1="{TOP - 8}" x2="{x(m.inject):.1f}" y2="{bottom}" '
                   f'stroke="#e66101" stroke-width="1.5"/>'
                   f'<text x="{x(m.inject) + 3:.1f}" y="{TOP - 26}">fault injected t={m.inject:.2f} s</text>')
    if m.revert is not None:
        svg.append(f'<line x1="{x(m.revert):.1f}" y1="{TOP - 8}" x2="{x(m.revert):.1f}" y2="{bottom}" '
                   f'stroke="#e66101" stroke-width="1.5" stroke-dasharray="4 3"/>'
                   f'<text x="{x(m.revert) + 3:.1f}" y="{TOP - 26}">reverted</text>')
    if m.recovered is not None and m.inject is not None:
        text = f"recovered +{m.recovered - m.inject:.2f} s"
        anchor = "end" if x(m.recovered) > WIDTH - 160 else "start"
        dx = -3 if anchor == "end" else 3
        svg.append(f'<line x1="{x(m.recovered):.1f}" y1="{TOP - 8}" x2="{x(m.recovered):.1f}" y2="{bottom}" '
                   f'stroke="#1b7837" stroke-width="2"/><text x="{x(m.recovered) + dx:.1f}" y="{TOP - 12}" '
                   f'text-anchor="{anchor}" style="fill:#1b7837;font-weight:600">{text}</text>')
    elif m.inject is not None:
        svg.append(f'<text x="{WIDTH - RIGHT}" y="{TOP - 12}" text-anchor="end" '
                   f'style="fill:#c62828;font-weight:600">not recovered</text>')
    svg.append("</svg>")
    return "\n".join(svg)


def _legend(colours: dict[str, str]) -> str:
    items = [(c, f"{h} (leader / holder)") for h, c in colours.items()]
    items += [(NONE, "no leader / not held"), (UNREACHABLE, "etcd member unreachable"),
              (READY, "ready / ok / steady"), (NOT_READY, "not ready / failed"), ("#fdb863", "fault window")]
    spans = "".join(f'<span><span class="sw" style="background:{c}"></span>{escape(t)}</span>' for c, t in items)
    return f'<div class="legend">{spans}<span>faded holder: not renewing</span></div>'


def _table(head: list[str], rows: list[list[str]], numeric: Collection[int] = ()) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def render(experiment: Experiment, verdict: Verdict, timelines: list[Timeline],
           measurements: list[Measurements], gate: Gate | None = None) -> str:
    e = escape
    gate = gate or evaluate(verdict, Policy())
    status = "pass" if gate.passed else "fail"
    title = headline(gate)
    colours = _hosts(timelines)
    faults = "; ".join(f"{f.kind} " + ", ".join(f"{k}={v}" for k, v in f.params.items()) for f in experiment.faults)
    body = [f'<h1>{e(experiment.name)} <span class="badge {status}">{e(title)}</span></h1>']
    if experiment.description:
        body.append(f"<p>{e(experiment.description)}</p>")
    body.append(f'<p class="meta">faults: {e(faults)}, held {experiment.duration:g} s · steady state: '
                f'{e(", ".join(experiment.steady_state))} (settle {experiment.settle:g} s) · runs: {verdict.runs}'
                + (f" · started {e(started(timelines[0]))}" if timelines else "") + "</p>")

    body.append("<h2>SLOs</h2>")
    if verdict.slos:
        css = {"pass": "ok", "fail": "bad", "warn": "warn", "ignored": "warn"}
        rows = [[e(s.result.metric), e(s.result.target), e(s.result.shown),
                 f'<span class="{css[s.status]}">{e(result(s).replace("**", ""))}</span>', e(s.result.evidence)]
                for s in gate.slos]
        table = _table(["SLO", "target", "measured", "result", "evidence"], rows, {2})
        for name in set(css.values()):
            table = table.replace(f'<td><span class="{name}">', f'<td class="{name}"><span>')
        body.append(table)
        if gate.policy != Policy():
            body.append(f'<p class="note">Gate: {e(gate.policy.describe())}.</p>')
        body += [f'<p class="note">{e(r.metric)}: {e(r.confidence)}</p>' for r in verdict.slos if r.confidence]
    else:
        body.append("<p>The experiment sets no SLO targets, so nothing can fail.</p>")
    if verdict.runs > 1 and verdict.slos:
        body.append("<h2>Distribution over runs</h2>")
        rows = []
        for r in verdict.slos:
            d = r.distribution
            rows.append([e(r.metric), str(d["n"]),
                         *(e(format_value(None if (v := d[k]) is None else float(v), r.unit))
                           for k in ("min", "median", "p95", "max")),
                         e(", ".join(format_value(v, r.unit) for v in r.values))])
        body.append(_table(["SLO", "n", "min", "median", "p95", "max", "per run"], rows, {1, 2, 3, 4, 5}))

    for i, (tl, m) in enumerate(zip(timelines, measurements), 1):
        title = f"Run {i}" if len(measurements) > 1 else "Timeline"
        body.append(f"<h2>{title}: recovery {e(format_measured(m.values.get('recoveryTime'), m.brackets.get('recoveryTime'), 's'))}</h2>")
        body.append(chart(tl, m, colours, i))
        if i == 1:
            body.append(_legend(colours))
        if m.phases:
            rows = [[e(p.name), f"{p.start:.2f}", f"{p.end:.2f}", f"{p.seconds:.2f}", e(p.evidence)]
                    for p in m.phases]
            rows.append(["<b>total</b>", f"{m.phases[0].start:.2f}", f"{m.phases[-1].end:.2f}",
                         f"<b>{sum(p.seconds for p in m.phases):.2f}</b>",
                         "= recoveryTime" if m.values.get("recoveryTime") is not None else "not recovered"])
            body.append(_table(["phase (ends when)", "from (s)", "to (s)", "seconds", "evidence"], rows, {1, 2, 3}))
        if summary := drains(tl):
            rows = [[e(d.node), e(format_value(d.seconds, "s")), "yes" if d.complete else "<b>no</b>",
                     e(drain_counts(d)), e(drain_reasons(d))] for d in summary]
            body.append("<h3>Drain</h3>" + _table(["node", "seconds", "complete", "pods", "reasons"], rows, {1}))
        rows = [[e(name), e(format_measured(m.values.get(name), m.brackets.get(name), unit)), e(m.evidence.get(name, ""))]
                for name, unit in METRICS.items()]
        body.append(f"<details{' open' if len(measurements) == 1 else ''}><summary>all measurements of "
                    f"{title.lower()}</summary>{_table(['metric', 'value', 'evidence'], rows, {1})}</details>")
    body.append('<p class="note">Times are seconds since the run started. Definitions: docs/measurements.md '
                "in the chaoslab repository. Hover over the chart for details.</p>")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(experiment.name)}: '
            f"{e(title)} · chaoslab</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
