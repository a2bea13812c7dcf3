"""How fast a polling probe samples: fast while a transition is expected, slow when all is quiet.

A transition (a new etcd leader, a new Lease holder, an apiserver going unready) is known only to lie
between two samples, so its bracket is as wide as the sampling interval. Sampling fast all the time would
load the cluster for nothing; the probes sample fast only while a change is likely:

- for `window` seconds after every `inject` or `revert` event on the run's timeline (the runner writes
  them; the probe reads its own timeline, no hook needed), and after a fault's effect begins
  (`EFFECT_EVENTS`), and
- while the probe itself sees trouble (members that disagree, a member or endpoint that fails).

Pure decision (`Pace.interval`), so it is unit-tested without threads or clocks.

    >>> pace = Pace(slow=0.1, fast=0.02, window=5.0)
    >>> pace.interval(now=12.0, events=[10.0], trouble=False)
    0.02
    >>> pace.interval(now=16.0, events=[10.0], trouble=False)
    0.1
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chaoslab.timeline import EFFECT_EVENTS, Timeline

#: The events after which a change is expected.
EXPECT_AFTER = ("inject", "revert")
#: Components whose faults change nothing in etcd or the apiservers' readiness.
LEADER_ELECTED = ("kube-scheduler", "kube-controller-manager")


@dataclass(frozen=True)
class Pace:
    slow: float
    """Seconds between samples when nothing is expected."""
    fast: float
    """Seconds between samples while a transition is expected."""
    window: float
    """Seconds after an inject or revert event during which a transition is expected."""

    def expecting(self, now: float, events: Iterable[float]) -> bool:
        return any(0.0 <= now - t < self.window for t in events)

    def interval(self, now: float, events: Iterable[float], trouble: bool) -> float:
        return self.fast if trouble or self.expecting(now, events) else self.slow

    def peak(self, share: float = 1.0) -> float:
        """Requests per second at the fast pace, for `share` requests per sample."""
        return share / self.fast


def expect_times(timeline: Timeline, unaffected: Collection[str] = ()) -> list[float]:
    """When the run injected or reverted a fault so far, leaving out faults into `unaffected` components
    (the inject event's `component`; a revert counts as its inject does): a kill of kube-scheduler changes
    nothing an etcd probe sees."""
    return _times_of(timeline, lambda inject: inject.get("component") not in unaffected)


def named_times(timeline: Timeline, target: str) -> list[float]:
    """When the run injected or reverted a fault whose injection names `target` (`component@host`, as in
    the inject event's `targets`): a kill of the apiserver on cp2 names `kube-apiserver@cp2`."""
    return _times_of(timeline, lambda inject: target in (inject.get("targets") or ()))


def _times_of(timeline: Timeline, chosen: Callable[[Mapping[str, Any]], bool]) -> list[float]:
    """The inject, revert and effect-begins (`EFFECT_EVENTS`: a kill or a cut lands then, over ssh seconds
    after the inject event) events of the faults whose inject event's detail is `chosen`."""
    keys = {(e.detail.get("fault"), e.detail.get("index")) for e in timeline.events_of("inject") if chosen(e.detail)}
    return [e.t for kind in (*EXPECT_AFTER, *EFFECT_EVENTS) for e in timeline.events_of(kind)
            if (e.detail.get("fault"), e.detail.get("index")) in keys]
