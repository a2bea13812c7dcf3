"""Steady-state conditions: whether each holds at a time t, judged from the latest sample of each subject
at or before t. One definition, used live by the runner (is the steady state there yet?) and afterwards by
the measurements (when did it come back?). Pure functions over a `Timeline`.

- apiserver-ready: the load-balanced endpoint (`apiserver/lb`) answered /readyz 200.
- all-apiservers-ready: every per-host apiserver did.
- etcd-leader: every reachable member names the same leader.
- etcd-quorum: a majority of the members ever seen are reachable, and they agree on one leader.
- scheduler-leader / controller-manager-leader: the Lease has a holder, and a renewal (a `renew` value
  that changed since the previous sample) was seen within the renewal window before t. A live holder renews
  every retry period (2 s by default); the window is two missed renewals (2 × retry + 1 s = 5 s). A
  hard-killed holder keeps its name in the Lease until it expires, but stops renewing at once, so the
  condition goes false within the window, not after the whole lease duration.
- scheduling: the newest scheduling-canary pod is bound, or has been pending for at most 10 s.

No sample yet means the condition does not hold (nothing is known to be fine).

A probe request that got no answer in time (an etcd Status past its deadline, a /readyz that timed out)
says nothing about its subject on its own: on a busy machine one such request fails now and then while
the member is fine. It counts as an outage only when a neighbouring sample of the subject confirms it
(another unanswered request, or a refusal); when the samples before and after it both show the subject
fine, it is left out (`confirmed`). Until that next sample arrives it counts as broken, so a condition judged live can only
come out better, never worse, once the answer is in.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise

from chaoslab.timeline import Sample, Timeline

LEASE_OF = {"scheduler-leader": "kube-scheduler", "controller-manager-leader": "kube-controller-manager"}
SCHEDULING_PATIENCE = 10.0
"""Seconds a canary pod may stay pending before `scheduling` counts as broken."""
RENEWAL_WINDOW = 5.0
"""Default seconds without an observed renewal after which a Lease holder counts as gone."""


UNANSWERED = {"etcd": ("reachable", frozenset({"DEADLINE_EXCEEDED"})), "apiserver": ("ready", frozenset({"timeout"}))}
"""probe → (the value an answered, healthy sample has true, the `error`s that mean "no answer in time")."""


def confirmed(samples: Sequence[Sample]) -> list[Sample]:
    """One subject's samples in time order without the unanswered ones that stand alone: both the sample
    before and the one after show the subject fine. An unanswered sample next to another, or to a refusal,
    is part of a confirmed outage and kept; so is the last one, whose next sample is not known yet."""
    key, errors = UNANSWERED.get(samples[0].probe, ("", frozenset())) if samples else ("", frozenset())
    if not key:
        return list(samples)
    out = []
    for prev, s, nxt in zip([None, *samples[:-1]], samples, [*samples[1:], None]):
        alone = (nxt is not None and bool(nxt.values.get(key))
                 and (prev is None or bool(prev.values.get(key))))
        if alone and not s.values.get(key) and s.values.get("error") in errors:
            continue
        out.append(s)
    return out


class Samples:
    """A read-side index of a timeline: each subject's samples in time order (unanswered requests that stand
    alone left out: `confirmed`), with their times, and each Lease's observed renewals. Build it once per
    evaluation; the timeline itself is never changed. `until`: only the samples up to then (a run judged
    while it goes on, up to where its timeline is final)."""

    def __init__(self, timeline: Timeline, until: float = math.inf) -> None:
        self.timeline = timeline
        series: dict[tuple[str, str], list[Sample]] = {}
        for s in sorted(timeline.snapshot(), key=lambda s: s.t):
            if s.t <= until:
                series.setdefault((s.probe, s.subject), []).append(s)
        self._series = {k: confirmed(v) for k, v in series.items()}
        self._times = {k: [s.t for s in v] for k, v in self._series.items()}
        self._renewals = {k[1]: renewal_times(v) for k, v in self._series.items() if k[0] == "lease"}
        self.instants = sorted({s.t for v in self._series.values() for s in v})
        """Every distinct sample time: the only instants at which a condition can change, apart from
        expiries."""

    def series(self, probe: str, subject: str) -> list[Sample]:
        return self._series.get((probe, subject), [])

    def times(self, probe: str, subject: str | None = None) -> list[float]:
        """Sample times of one subject, or of every subject of the probe when `subject` is None."""
        return sorted(t for (p, s), ts in self._times.items() if p == probe and subject in (None, s) for t in ts)

    def subjects(self, probe: str) -> list[str]:
        return sorted(subject for p, subject in self._series if p == probe)

    def latest(self, probe: str, subject: str, t: float) -> Sample | None:
        """The last sample of a subject at or before t."""
        i = bisect_right(self._times.get((probe, subject), []), t)
        return self._series[(probe, subject)][i - 1] if i else None

    def last_renewal(self, lease: str, t: float) -> float | None:
        times = self._renewals.get(lease, [])
        i = bisect_right(times, t)
        return times[i - 1] if i else None


def renewal_times(samples: Sequence[Sample]) -> list[float]:
    """When renewals were observed: every sample whose `renew` value differs from the one before it.
    The first sample is not one: a Lease whose holder has just died still names it, with a renewTime
    that will never move again, until it expires."""
    return [b.t for a, b in pairwise(samples) if b.values.get("renew") != a.values.get("renew")]


def etcd_reachable(index: Samples, t: float) -> tuple[int, list[Sample]]:
    """(members ever seen, the latest view of every member that was reachable at t)."""
    members = index.subjects("etcd")
    views = [v for v in (index.latest("etcd", m, t) for m in members) if v is not None]
    return len(members), [v for v in views if v.values.get("reachable")]


def holds_until(index: Samples, condition: str, t: float, renewal_window: float = RENEWAL_WINDOW) -> float:
    """Until when the condition holds, judged from the samples seen by t: `math.inf` when it holds until
    the next sample changes something, a finite time when it expires by itself without a new sample (a
    Lease not renewed, a canary pod left pending), `-math.inf` when it does not hold at t. The one
    definition of every condition: `holds` and the measurements' intervals both come from it."""
    no, yes = -math.inf, math.inf
    if condition == "apiserver-ready":
        s = index.latest("apiserver", "lb", t)
        return yes if s and s.values.get("ready") else no
    if condition == "all-apiservers-ready":
        views = [index.latest("apiserver", h, t) for h in index.subjects("apiserver") if h != "lb"]
        return yes if views and all(v is not None and v.values.get("ready") for v in views) else no
    if condition in ("etcd-leader", "etcd-quorum"):
        members, reachable = etcd_reachable(index, t)
        leaders = {v.values.get("leader") for v in reachable}
        agreed = len(leaders) == 1 and None not in leaders
        return yes if agreed and (condition == "etcd-leader" or len(reachable) > members // 2) else no
    if condition in LEASE_OF:
        s = index.latest("lease", LEASE_OF[condition], t)
        renewed = index.last_renewal(LEASE_OF[condition], t)
        return renewed + renewal_window if s and s.values.get("holder") and renewed is not None else no
    if condition == "scheduling":
        s = index.latest("canary", "scheduling", t)
        if s is None:
            return no
        return yes if s.values.get("bound") else s.t + SCHEDULING_PATIENCE - float(s.values.get("seconds", 0))
    raise ValueError(f"unknown steady-state condition {condition!r}")


def holds(index: Samples, condition: str, t: float, renewal_window: float = RENEWAL_WINDOW) -> bool:
    """Whether the condition holds at t."""
    return t <= holds_until(index, condition, t, renewal_window)


def failing_conditions(timeline: Timeline | Samples, conditions: Sequence[str], t: float,
                       renewal_window: float = RENEWAL_WINDOW) -> list[str]:
    """The conditions that do not hold at t."""
    index = timeline if isinstance(timeline, Samples) else Samples(timeline)
    return [c for c in conditions if not holds(index, c, t, renewal_window)]


Interval = tuple[float, float]
"""[start, end) in seconds of a timeline."""


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with empty intervals dropped and overlapping or touching ones joined."""
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def spans(samples: Sequence[Sample], end: float, bad: Callable[[Sample], bool]) -> list[Interval]:
    """Where `bad(sample)` holds for one subject's samples, each sample standing until the next one (the
    last until `end`), merged."""
    return merge((s.t, nxt.t if nxt else end) for s, nxt in zip(samples, [*samples[1:], None]) if bad(s))


def false_intervals(samples: Sequence[Sample], key: str, end: float) -> list[Interval]:
    """Where one subject's `key` was false: from each sample saying so to that subject's next sample (or
    `end`). The one definition of "unavailable" for measurements and live abort conditions."""
    return spans(samples, end, lambda s: not s.values.get(key))


def unavailable_seconds(samples: Sequence[Sample], key: str, end: float) -> float:
    """Total time, up to `end`, that `false_intervals` covers."""
    return sum(b - a for a, b in false_intervals(samples, key, end))


LIVE_METRICS = ("apiserverUnavailable", "apiWriteUnavailable")
"""Metrics that can be known while a run goes on (abort conditions of experiments and game days)."""


def value_until(timeline: Timeline, metric: str, end: float) -> float | None:
    """A live metric over [0, end] of one timeline; None if the metric is not one of `LIVE_METRICS`."""
    if metric == "apiserverUnavailable":
        return unavailable_seconds(timeline.samples_of("apiserver", "lb"), "ready", end)
    if metric == "apiWriteUnavailable":
        return unavailable_seconds(timeline.samples_of("canary", "write"), "ok", end)
    return None


def live_value(timeline: Timeline, metric: str) -> float | None:
    """A metric as far as it can be known during the run (for abort conditions); None if not live."""
    return value_until(timeline, metric, timeline.now())
