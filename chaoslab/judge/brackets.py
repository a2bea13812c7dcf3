"""Brackets: how much a measured time can be off, from the samples alone.

A probe samples; a transition happens between two samples. The truth lies after the last sample that
showed the old state and no later than the first sample that showed the new one (plus that sample's own
round trip, when the probe records it as `rtt`). Every time chaoslab measures carries that bracket as
`(low, high)`; the verdict judges with it (pass when the whole bracket passes, fail when the whole
bracket fails, otherwise `inconclusive`), and reports show it as `1.71 s (±0.05)` (the bracket's middle
and half its width). Pure functions; called by `chaoslab.judge.measure`. Definitions per metric are in
docs/measurements.md.

    >>> span_bracket([(0.0, True), (1.0, False), (1.1, False), (1.3, True)], 0.0, 2.0)
    (0.1, 1.3)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from chaoslab.judge.conditions import Interval

Bracket = tuple[float, float]
"""(low, high): the true value lies in [low, high]."""

#: Below this width a bracket is shown without ± (times carry four decimals).
EXACT = 5e-5


def rounded(low: float, high: float) -> Bracket:
    return round(min(low, high), 4), round(max(low, high), 4)


def span_bracket(series: Sequence[tuple[float, bool]], start: float, end: float) -> Bracket:
    """Total bad time of one sampled series over [start, end], as a bracket. `series` is (time, bad) in
    time order. A run of bad samples from `a` to `z`, followed by a good sample at `g` (or the end), was
    bad at least from a to z and at most from the good sample before `a` (or `start`) to `g`. One bad
    sample between good ones is therefore 0 at least: one missed sample proves no outage."""
    low = high = 0.0
    prev_good: float | None = None
    i = 0
    while i < len(series):
        t, bad = series[i]
        if not bad:
            prev_good = t
            i += 1
            continue
        j = i
        while j + 1 < len(series) and series[j + 1][1]:
            j += 1
        first, last = t, series[j][0]
        nxt = series[j + 1][0] if j + 1 < len(series) else end
        lo_a, lo_b = max(first, start), min(last, end)
        hi_a, hi_b = max(prev_good if prev_good is not None else first, start), min(nxt, end)
        low += max(0.0, lo_b - lo_a)
        high += max(0.0, hi_b - hi_a)
        i = j + 1
    return rounded(low, high)


def interval_bracket(intervals: Sequence[Interval], instants: Sequence[float], end: float,
                     exact: Sequence[float] = ()) -> Bracket:
    """Total length of intervals whose edges are sample instants (or `end`), as a bracket: each interval
    [a, b) truly began after the instant before `a` and ended after the last instant before `b`. Edges in
    `exact` (event times such as an injection) are known, not sampled."""
    times = sorted(set(instants))
    known = set(exact)
    low = high = 0.0
    for a, b in intervals:
        i = bisect_left(times, a)
        before = a if a in known or i == 0 else times[i - 1]
        k = bisect_left(times, b)
        last_in = b if b in known or b >= end else (times[k - 1] if k and times[k - 1] >= a else a)
        low += max(0.0, last_in - a)
        high += b - before
    return rounded(low, high)


def previous_instant(times: Sequence[float], t: float, floor: float) -> float:
    """The last of `times` strictly before t (not below `floor`); `floor` when there is none."""
    i = bisect_left(times, t)
    return max(times[i - 1], floor) if i else floor


def outcome(low: float, high: float, aggregate: str, threshold: float) -> str:
    """`pass` when the whole bracket meets the target, `fail` when the whole bracket violates it,
    `inconclusive` when it straddles the limit."""
    if aggregate == "min":
        return "pass" if low >= threshold else "fail" if high < threshold else "inconclusive"
    return "pass" if high <= threshold else "fail" if low > threshold else "inconclusive"


def show(low: float, high: float, unit: str) -> str:
    """`1.71 s (±0.05)`: the middle of the bracket and half its width; an exact value as `1.71 s`."""
    if high - low < EXACT:
        return f"{low:g}" if unit == "count" else f"{low:.2f} s"
    mid, half = (low + high) / 2, (high - low) / 2
    digits = 2 if half >= 0.05 else 3
    return f"{mid:.{digits}f} s (±{half:.{digits}f})"
