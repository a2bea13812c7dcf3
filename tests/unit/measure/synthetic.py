"""Synthetic timelines for the measurement, verdict and report tests: a FakeClock drives a real
`Timeline` through a compact list of records, and a few builders play the probes of a small lab
(three hosts, etcd polled, Leases renewed every 2 s, the load balancer and canary writes sampled)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from chaoslab.timeline import Timeline

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
def lease_reads(name: str, identity: str, renew: str, start: float, stop: float, every: float) -> list[Record]:
    """The Lease probe's quorum reads while a change is expected (`via: list`), all showing one holder."""
    holder = identity.rsplit("_", 1)[0]
    return [(t, "lease", name, {"holder": holder, "identity": identity, "renew": renew, "duration": 15,
                                "via": "list", "rtt": 0.002}) for t in ticks(start, stop, every)]


def scheduler_kill(takeover: float | None = 27.0, end: float = 60.0, targets_holder: bool = True,
                   reads: float | None = 0.01) -> Timeline:
    """cp1 holds the kube-scheduler Lease and stops renewing at the kill (t=10); cp2 takes it at `takeover`
    (None: nobody ever does). etcd, the API, writes and kube-controller-manager stay healthy. The Lease is
    read every `reads` seconds from the kill until the takeover (None: only watched)."""
    recs: list[Record] = [(0.0, "run-start", {"experiment": "scheduler-leader-kill", "run": 1})]
    recs += etcd_steady(0.5, end, "cp1", 2, step=0.5)
    recs += lb(0.5, end)
    recs += writes(1.0, end)
    recs += renewing("kube-controller-manager", "cp2_cm-uuid-2", 0.2, end)
    recs += renewing("kube-scheduler", "cp1_sched-uuid-1", 0.2, 10.0)
    if takeover is not None:
        recs += renewing("kube-scheduler", "cp2_sched-uuid-2", takeover, end)
    if reads is not None:
        recs += lease_reads("kube-scheduler", "cp1_sched-uuid-1", "renew-cp1_sched-uuid-1-8.2", 10.0 + reads,
                            takeover if takeover is not None else end, reads)
    recs.append(inject(10.0, "kube-scheduler", "cp1" if targets_holder else "cp3"))
    recs.append(revert(40.0))
    recs.append((end, "run-end", {}))
    return build(recs)


def etcd_kill(lost: float = 10.2, no_leader: float = 11.0, elected: float = 11.3, new_term: int = 3,
              lb_down: tuple[float, float] | None = None, writes_fail: tuple[float, float] | None = None,
              end: float = 30.0, began: float | None = None,
              effect: tuple[str, str] = ("signalling", "process-signalled")) -> Timeline:
    """The etcd leader cp1 (term 2) is killed at t=10: unreachable from `lost`, the followers name no leader
    from `no_leader` and cp3 (in `new_term`) from `elected`; cp1 is back after the revert at t=20. `began`:
    injecting began then, and the fault took effect between the `effect` events (9.95 and 10.0): a signal, or
    a partition's rules)."""
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
    recs += [inject(10.0 if began is None else began, "etcd", "cp1"), revert(20.0), (end, "run-end", {})]
    if began is not None:
        recs += [(9.95, effect[0], {"target": "etcd@cp1", "fault": "kill-process", "index": 0}),
                 (10.0, effect[1], {"target": "etcd@cp1", "fault": "kill-process", "index": 0})]
    return build(recs)


# ---- a drained node under a PodDisruptionBudget (chaoslab.judge.disruption) --------------------------------
W = "Deployment/shop/web"


def pod(t: float, uid: str, node: str, ready: bool, deleting: bool = False, gone: bool = False,
        workload: str = W) -> Record:
    return (t, "workloads", "pod", {"uid": uid, "pod": f"shop/web-{uid}", "workload": workload, "node": node,
                                    "created": None, "ready": ready, "deleting": deleting, "gone": gone})


def workload(start: float, stop: float, ready: dict[float, int], desired: int = 3, name: str = W) -> list[Record]:
    """Every 0.5 s; `ready` maps the time from which a count holds."""
    out: list[Record] = []
    for t in ticks(start, stop, 0.5):
        now = max((k for k in ready if k <= t + 1e-9), default=None)
        out.append((t, "workloads", name, {"desired": desired, "ready": ready[now] if now is not None else 0,
                                           "available": 0, "updated": 0, "healthy": 0}))
    return out


def pdb(start: float, stop: float, healthy: dict[float, int], required: int | None = 2) -> list[Record]:
    out: list[Record] = []
    for t in ticks(start, stop, 0.5):
        now = max(k for k in healthy if k <= t + 1e-9)
        out.append((t, "workloads", "pdb/shop/web", {"healthy": healthy[now], "required": required,
                                                     "workloads": [W]}))
    return out


def eviction(t: float, uid: str, outcome: str, node: str = "n1", **more: Any) -> Record:
    return (t, "eviction", {"fault": "drain-node", "index": 0, "node": node, "pod": f"shop/web-{uid}", "uid": uid,
                            "owner": "ReplicaSet/web-1", "outcome": outcome, "reason": more.pop("reason", ""),
                            **more})


def drained(end: float = 30.0, pdb_healthy: dict[float, int] | None = None) -> Timeline:
    """3 replicas (a, b on n1; c on n2), PDB minAvailable 2. n1 cordoned at 10, a evicted at 10.2 (its
    replacement d Ready on n2 at 13.0), b refused then evicted at 13.5 (replacement e Ready on n3 at 17.5),
    drain event at 18.0."""
    recs: list[Record] = [(0.0, "run-start", {"experiment": "drain", "run": 1})]
    recs += lb(0.5, end)
    recs += [pod(0.5, "a", "n1", True), pod(0.5, "b", "n1", True), pod(0.5, "c", "n2", True)]
    recs += [(10.0, "inject", {"fault": "drain-node", "index": 0, "targets": ["node@n1"]}),
             (10.0, "cordon", {"fault": "drain-node", "index": 0, "node": "n1"}),
             eviction(10.2, "a", "evicted"), pod(10.5, "a", "n1", False, deleting=True), pod(10.5, "d", "n2", False),
             eviction(10.3, "b", "refused", reason="Cannot evict pod as it would violate the pod's disruption budget."),
             pod(11.5, "a", "n1", False, gone=True), eviction(11.5, "a", "terminated"),
             pod(13.0, "d", "n2", True),
             eviction(13.5, "b", "evicted", attempts=4, blockedSeconds=3.2), pod(14.0, "b", "n1", False, deleting=True),
             pod(14.0, "e", "n3", False), pod(15.0, "b", "n1", False, gone=True), eviction(15.0, "b", "terminated"),
             pod(17.5, "e", "n3", True),
             eviction(10.1, "ds", "skipped", reason="ignoring DaemonSet-managed Pods"),
             (18.0, "drain", {"fault": "drain-node", "index": 0, "node": "n1", "api": "policy/v1beta1",
                              "seconds": 7.9, "complete": True, "evicted": 2, "skipped": 1, "remaining": 0,
                              "blocked": 0, "failed": 0}),
             (20.0, "revert", {"fault": "drain-node", "index": 0, "ok": True, "error": None})]
    recs += workload(0.5, end, {0.5: 3, 10.5: 2, 13.0: 3, 14.0: 2, 17.5: 3})
    recs += pdb(0.5, end, pdb_healthy or {0.5: 3, 10.5: 2, 13.0: 3, 14.0: 2, 17.5: 3})
    recs.append((end, "run-end", {}))
    return build(recs)
