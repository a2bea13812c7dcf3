"""When the steady state holds, and when a run is over: one decision, taken by the runner and kept by the
measurement.

The runner (`chaoslab.execute.Observation`) ends a run once the steady state has held for the settle period
after the revert, judged from every sample that can still change that answer (`settled_until`: the
timeline is final up to the oldest request a probe still has in flight). It records the instant it
decided as the `steady-state` event of phase `after`. The measurement judges the steady state up to that
same instant (`judged_end`), with the same intervals and the same recovery rule (`recovery`), so a sample
that arrives after the decision (an answer that was in flight, a probe's last tick) can never turn a run
the runner saw recover into "never recovered".

The intervals only grow as samples arrive: the runner judges only the samples up to where the timeline is
final (`Samples(timeline, until=end)`), and an unanswered sample counts as broken until the samples on
both sides of it show the subject fine (`chaoslab.judge.conditions.confirmed`), so whatever the runner saw
hold, the final timeline holds too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chaoslab.judge.conditions import RENEWAL_WINDOW, Interval, Samples, holds_until, merge
from chaoslab.timeline import Timeline

EPSILON = 1e-3
"""Slack when comparing an interval's length with the settle period: saved times carry four decimals, so
a length the runner saw as exactly `settle` may read 0.1 ms shorter from the saved file."""


def intersect(xs: list[Interval], ys: list[Interval]) -> list[Interval]:
    """Where both sorted, disjoint interval lists hold."""
    out: list[Interval] = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if a < b:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def intervals_at(instants: Sequence[float], end: float, until: Callable[[float], float]) -> list[Interval]:
    """Where a property holds on [0, end], given `until(t)`: what `holds_until` answers for it at instant t.
    `instants` are every time at which the property can change; those at or after `end` are ignored."""
    inside = [t for t in instants if t < end]
    out = []
    for t, nxt in zip(inside, [*inside[1:], end]):
        if (stop := min(nxt, until(t))) > t:
            out.append((t, stop))
    return merge(out)


def intervals(index: Samples, end: float, until: Callable[[float], float]) -> list[Interval]:
    """`intervals_at` over every sample time. Samples only change things at their own instants, so
    evaluating at each instant is exact. Before the first sample nothing is known, so nothing holds."""
    return intervals_at(index.instants, end, until)


def condition_intervals(timeline: Timeline | Samples, condition: str, end: float,
                        renewal_window: float = RENEWAL_WINDOW) -> list[Interval]:
    """Where one steady-state condition holds on [0, end]: `chaoslab.judge.conditions`' definition."""
    index = timeline if isinstance(timeline, Samples) else Samples(timeline)
    return intervals(index, end, lambda t: holds_until(index, condition, t, renewal_window))


def steady_intervals(index: Samples, conditions: Sequence[str], end: float,
                     renewal_window: float = RENEWAL_WINDOW) -> tuple[dict[str, list[Interval]], list[Interval]]:
    """(each condition's intervals, where all of them hold at once) on [0, end]."""
    per_condition = {c: condition_intervals(index, c, end, renewal_window) for c in conditions}
    ok: list[Interval] = [(0.0, end)] if end > 0 else []
    for held in per_condition.values():
        ok = intersect(ok, held)
    return per_condition, ok


def recovery(ok: list[Interval], inject: float, settle: float, end: float) -> tuple[float | None, float | None]:
    """(T, first failure): T is the first moment at or after the first failure from which the steady state
    holds for `settle`; T = inject (and no failure) when it never failed after injection."""
    around = next((iv for iv in ok if iv[0] <= inject < iv[1]), None)
    if around is not None and around[1] >= end:
        return inject, None
    failed = around[1] if around else inject
    for a, b in ok:
        if a >= failed and b - a >= settle - EPSILON:
            return a, failed
    return None, failed


def is_over(index: Samples, conditions: Sequence[str], settle: float, since: float, end: float,
            renewal_window: float = RENEWAL_WINDOW) -> bool:
    """The runner's decision: every condition has held without a break for the last `settle` seconds
    before `end`, none of them before `since` (the revert). Judged at the same instants as
    `steady_intervals` (only the window's), so when it is true, `recovery` over [0, end] finds the
    recovery, at the latest where this hold began; and it stays true as later samples arrive."""
    if end - since < settle:
        return False
    start = end - settle
    points = [start, *(t for t in index.instants if start < t < end)]
    return all(holds_until(index, c, t, renewal_window) >= nxt
               for c in conditions for t, nxt in zip(points, [*points[1:], end]))


def judged_end(timeline: Timeline) -> float:
    """Where the steady state is judged up to: the instant the runner decided the run was over (its
    `steady-state` event of phase `after`), or the timeline's end for a run that never got there."""
    decided = [e.t for e in timeline.events_of("steady-state") if e.detail.get("phase") == "after"]
    return max(decided) if decided else timeline.end
