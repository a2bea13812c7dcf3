"""Synthetic timelines for the measurement, verdict and report tests: a FakeClock drives a real
`Timeline` through a compact list of records, and a few builders play the probes of a small lab
(three hosts, etcd polled, Leases renewed every 2 s, the load balancer and canary writes sampled)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from chaoslab.run.timeline import Timeline

Record = tuple[float, str, str, Mapping[str, Any]] | tuple[float, str, Mapping[str, Any]]
MEMBERS = ("cp1", "cp2", "cp3")
STARTED_WALL = 1_795_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def build(records: Iterable[Record]) -> Timeline:
    """A timeline from (t, probe, subject, values) samples and (t, event, detail) events, in any order."""
    clock = FakeClock()
    tl = Timeline(started_wall=STARTED_WALL, t0=0.0, clock=clock)
    for rec in sorted(records, key=lambda r: r[0]):
        clock.now = rec[0]
        if len(rec) == 4:
            tl.sample(rec[1], rec[2], **rec[3])
        else:
            tl.event(rec[1], **rec[2])
    return tl


def ticks(start: float, stop: float, step: float) -> Iterator[float]:
    """start, start+step, … < stop, computed by multiplication (like a poller) so no error accumulates."""
    k = 0
    while (t := start + k * step) < stop - 1e-9:
        yield t
        k += 1


def etcd(t: float, views: Mapping[str, tuple[str | None, int] | None]) -> list[Record]:
    """One poll: member → (leader, term), or None when unreachable."""
    out: list[Record] = []
    for member, view in views.items():
        if view is None:
            out.append((t, "etcd", member, {"reachable": False, "leader": None, "term": None, "index": None,
                                            "error": "UNAVAILABLE"}))
        else:
            out.append((t, "etcd", member, {"reachable": True, "leader": view[0], "term": view[1], "index": 100,
                                            "error": None}))
    return out


def etcd_steady(start: float, stop: float, leader: str, term: int, step: float = 0.1) -> list[Record]:
    return [r for t in ticks(start, stop, step) for r in etcd(t, dict.fromkeys(MEMBERS, (leader, term)))]


def lease(t: float, name: str, identity: str | None, renew: str | None) -> Record:
    holder = identity.rsplit("_", 1)[0] if identity else None
    return (t, "lease", name, {"holder": holder, "identity": identity, "renew": renew, "duration": 15})


def renewing(name: str, identity: str, start: float, stop: float, every: float = 2.0) -> list[Record]:
    """A live holder: a watch event with a new renewTime every `every` seconds."""
    return [lease(t, name, identity, f"renew-{identity}-{t:.1f}") for t in ticks(start, stop, every)]


def lb(start: float, stop: float, ready: bool = True, step: float = 0.25) -> list[Record]:
    return [(t, "apiserver", "lb", {"ready": ready, "status": 200 if ready else None})
            for t in ticks(start, stop, step)]


def write(t: float, ok: bool) -> Record:
    return (t, "canary", "write", {"ok": ok, "seconds": 0.01, "error": None if ok else "timeout"})


def writes(start: float, stop: float, ok: bool = True, every: float = 2.0) -> list[Record]:
    return [write(t, ok) for t in ticks(start, stop, every)]


def inject(t: float, component: str, host: str) -> Record:
    return (t, "inject", {"fault": "kill-process", "index": 0, "targets": [f"{component}@{host}"],
                          "component": component, "role": "leader"})


def revert(t: float) -> Record:
    return (t, "revert", {"fault": "kill-process", "index": 0, "ok": True, "error": None})


# ---- scenarios -----------------------------------------------------------------------------------------
def scheduler_kill(takeover: float | None = 27.0, end: float = 60.0, targets_holder: bool = True) -> Timeline:
    """cp1 holds the kube-scheduler Lease and stops renewing at the kill (t=10); cp2 takes it at `takeover`
    (None: nobody ever does). etcd, the API, writes and kube-controller-manager stay healthy."""
    recs: list[Record] = [(0.0, "run-start", {"experiment": "scheduler-leader-kill", "run": 1})]
    recs += etcd_steady(0.5, end, "cp1", 2, step=0.5)
    recs += lb(0.5, end)
    recs += writes(1.0, end)
    recs += renewing("kube-controller-manager", "cp2_cm-uuid-2", 0.2, end)
    recs += renewing("kube-scheduler", "cp1_sched-uuid-1", 0.2, 10.0)
    if takeover is not None:
        recs += renewing("kube-scheduler", "cp2_sched-uuid-2", takeover, end)
    recs.append(inject(10.0, "kube-scheduler", "cp1" if targets_holder else "cp3"))
    recs.append(revert(40.0))
    recs.append((end, "run-end", {}))
    return build(recs)


def etcd_kill(lost: float = 10.2, no_leader: float = 11.0, elected: float = 11.3, new_term: int = 3,
              lb_down: tuple[float, float] | None = None, writes_fail: tuple[float, float] | None = None,
              end: float = 30.0) -> Timeline:
    """The etcd leader cp1 (term 2) is killed at t=10: unreachable from `lost`, the followers name no leader
    from `no_leader` and cp3 (in `new_term`) from `elected`; cp1 is back after the revert at t=20."""
    recs: list[Record] = [(0.0, "run-start", {"experiment": "etcd-leader-kill", "run": 1})]
    for t in ticks(0.5, end, 0.1):
        if t < lost:
            views: dict[str, tuple[str | None, int] | None] = dict.fromkeys(MEMBERS, ("cp1", 2))
        elif t < no_leader:
            views = {"cp1": None, "cp2": ("cp1", 2), "cp3": ("cp1", 2)}
        elif t < elected:
            views = {"cp1": None, "cp2": (None, 2), "cp3": (None, 3)}
        else:
            views = {"cp1": ("cp3", new_term) if t >= 20.5 else None, "cp2": ("cp3", new_term),
                     "cp3": ("cp3", new_term)}
        recs += etcd(t, views)
    if lb_down:
        recs += lb(0.5, lb_down[0]) + lb(lb_down[0], lb_down[1], ready=False) + lb(lb_down[1], end)
    else:
        recs += lb(0.5, end)
    if writes_fail:
        recs += (writes(1.0, writes_fail[0], every=0.5) + writes(writes_fail[0], writes_fail[1], ok=False, every=0.5)
                 + writes(writes_fail[1], end, every=0.5))
    else:
        recs += writes(1.0, end, every=0.5)
    recs += renewing("kube-scheduler", "cp2_sched-uuid-2", 0.2, end)
    recs += renewing("kube-controller-manager", "cp2_cm-uuid-2", 0.2, end)
    recs += [inject(10.0, "etcd", "cp1"), revert(20.0), (end, "run-end", {})]
    return build(recs)
