"""Small, dependency-free statistics for comparing runs: the one-sided Mann–Whitney U test (exact
permutation p-value for the sizes chaos runs come in, normal approximation with tie and continuity
correction beyond that), and the median/MAD outlier rule for a single new run. Pure; called by
`chaoslab.ops.history`. Why these two and what they cannot say for small n: docs/history.md.

    >>> mann_whitney_greater([10.1, 10.4, 9.8, 10.0, 10.2], [14.9, 15.3, 15.1]).p_value    # doctest: +SKIP
    0.0179
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

EXACT_LIMIT = 200_000
"""Largest number of rank assignments (n+m choose m) enumerated for the exact p-value."""

MAD_SCALE = 1.4826
"""MAD × 1.4826 estimates the standard deviation of normally distributed data."""


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties given their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


@dataclass(frozen=True)
class UTest:
    """One-sided Mann–Whitney U: is `candidate` stochastically greater than `baseline`?"""

    u: float
    """U of the candidate: pairs (candidate, baseline) with candidate > baseline, ties counting ½."""
    p_value: float
    method: str
    """`exact` (every assignment of the pooled ranks enumerated, ties included) or `normal`."""
    min_p: float
    """The smallest p-value these sample sizes can give at all (the candidate above every baseline run):
    when it is above α, no data can flag a regression."""


def mann_whitney_greater(baseline: Sequence[float], candidate: Sequence[float]) -> UTest:
    """One-sided test of H0 "the candidate runs come from the baseline's distribution" against "they are
    larger". Exact when C(n+m, m) ≤ EXACT_LIMIT: the rank sum of the candidate is compared with its value
    under every way of picking m of the pooled (mid-)ranks, so ties are handled exactly, conditionally on
    them. Otherwise the normal approximation with tie correction and continuity correction."""
    n, m = len(baseline), len(candidate)
    if n == 0 or m == 0:
        raise ValueError("the Mann-Whitney test needs at least one baseline and one candidate value")
    pooled = [*baseline, *candidate]
    r = ranks(pooled)
    rank_sum = sum(r[n:])
    u = rank_sum - m * (m + 1) / 2
    total = math.comb(n + m, m)
    min_p = 1 / total
    if total <= EXACT_LIMIT:
        # Doubled rank sums are integers (mid-ranks are halves): compare exactly, no float noise.
        doubled = [round(2 * x) for x in r]
        observed = round(2 * rank_sum)
        hits = sum(1 for pick in itertools.combinations(doubled, m) if sum(pick) >= observed)
        return UTest(u, hits / total, "exact", min_p)
    ties = _tie_term(pooled)
    sd = math.sqrt(n * m / 12 * ((n + m + 1) - ties / ((n + m) * (n + m - 1))))
    if sd == 0:
        return UTest(u, 1.0, "normal", min_p)
    z = (u - n * m / 2 - 0.5) / sd
    return UTest(u, 0.5 * math.erfc(z / math.sqrt(2)), "normal", min_p)


def _tie_term(values: Sequence[float]) -> float:
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return float(sum(t ** 3 - t for t in counts.values()))


def median(values: Sequence[float]) -> float:
    xs = sorted(values)
    if not xs:
        raise ValueError("median of no values")
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (unscaled)."""
    centre = median(values)
    return median([abs(v - centre) for v in values])


def mad_limit(baseline: Sequence[float], k: float = 3.0, floor: float = 0.0) -> float:
    """The robust upper limit median + k × 1.4826 × MAD of the baseline. `floor` is the smallest spread
    allowed: a baseline of identical values (MAD 0) would otherwise flag any increase at all."""
    return median(baseline) + k * max(MAD_SCALE * mad(baseline), floor)
