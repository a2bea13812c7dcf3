"""`drain-node`: what `kubectl drain` does to a node — cordon it, then evict its pods through the Eviction
API so PodDisruptionBudgets hold — with a blast radius the experiment states, and uncordon at revert.

Which nodes: `nodes` by name, or `count` (default 1) or `percent` of the nodes matching `selector` (all
nodes without one), at random, or with `select: busiest` the candidates that run the most pods of the
`namespaces` (the workload the drain is meant to exercise; a candidate set running none of them is
refused before anything is cordoned, so a drain never "succeeds" on nothing); never more than `maxNodes`
(default 1): a selection that is larger is refused, not cut down. Which pods: see chaoslab.faults.drain (kubectl's rules, plus protected namespaces: only
pods in `namespaces` are touched, kube-system only with `allowKubeSystem`). A pod that refuses the drain
(a bare pod without `force`, emptyDir without `deleteEmptyDirData`, a DaemonSet pod without
`ignoreDaemonSets`) refuses it before anything is cordoned.

Resolve records the undo (`uncordon` of the nodes this fault cordons: not those already cordoned) before
inject cordons. Inject then evicts the pods of each node in turn, `parallelism` at a time, retrying PDB
refusals every `retryInterval` until `timeout`, and waits (within the same `timeout`) for the evicted pods
to be gone. A drain still blocked by a PDB at the timeout is an observation, not an error: the node stays
cordoned for the duration and the timeline says which pods stayed and why. Other API errors fail the
injection (and the runner uncordons).

Timeline events (kind → detail): ``cordon`` (``node``); ``eviction`` (``node``, ``pod`` ns/name, ``uid``,
``owner`` Kind/name, ``outcome``, ``reason``; outcome `skipped` for pods left in place, `refused` at a
pod's first PDB refusal, then `evicted`, `deleted` (finished pods, or `disableEviction`), `gone`,
`blocked` or `failed` with ``attempts`` and ``blockedSeconds``, and `terminated` once the pod has left
the node); ``drain`` (``node``, ``complete``, ``seconds``, counts ``evicted``, ``skipped``, ``blocked``,
``failed``, ``remaining`` and ``api`` the Eviction version used or `delete`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults.base import FaultBase, Injection, Record, Undo, ignore_events
from chaoslab.faults.drain import DrainOptions, PodDecision, choose_nodes, classify, refusal
from chaoslab.faults.eviction import (
    EvictionResult,
    EvictionSettings,
    Evictor,
    PodRef,
    eviction_version,
    wait_gone,
)
from chaoslab.faults.selection import namespace_problems, selection_problems
from chaoslab.targets import Target


@dataclass(frozen=True)
class DrainNodeParams(EvictionSettings):
    nodes: Sequence[str] = ()
    """Nodes by name (then `count`, `percent` and `selector` must not be set)."""
    selector: str | None = None
    """Label selector narrowing the candidate nodes, e.g. `chaoslab.io/simulated=true`."""
    count: int | None = None
    """How many candidate nodes to drain, picked at random (default 1)."""
    percent: float | None = None
    """Or this percentage of the candidates, rounded up."""
    select: str = "random"
    """How `count`/`percent` pick among the candidates: `random` (default) or `busiest` (the nodes running
    the most pods of `namespaces`, ties by name)."""
    maxNodes: int = 1  # camelCase fields: the YAML spelling, as build() passes them
    """Blast-radius limit: refuse to drain more nodes than this (default 1)."""
    namespaces: Sequence[str] = field(default_factory=tuple)
    """Namespaces whose pods may be evicted; `*` for all. Pods elsewhere are left in place."""
    allowKubeSystem: bool = False
    """Evict kube-system pods too (when `namespaces` includes it or `*`)."""
    ignoreDaemonSets: bool = False
    """Leave DaemonSet pods in place instead of refusing (kubectl --ignore-daemonsets)."""
    deleteEmptyDirData: bool = False
    """Evict pods with emptyDir volumes, whose data is lost (kubectl --delete-emptydir-data)."""
    force: bool = False
    """Evict pods that no controller recreates (kubectl --force)."""
    disableEviction: bool = False
    """Delete pods instead of evicting them: PDBs are bypassed (kubectl --disable-eviction)."""

    def __post_init__(self) -> None:
        problems = self.eviction_problems("drain-node")
        problems += selection_problems("drain-node", "node", self.nodes, self.selector, self.count, self.percent,
                                       self.maxNodes, "maxNodes")
        problems += namespace_problems("drain-node", self.namespaces)
        if self.select not in ("random", "busiest"):
            problems.append(f"drain-node: select {self.select!r} is not random or busiest")
        if self.select == "busiest" and self.nodes:
            problems.append("drain-node: select: busiest picks among candidate nodes; it cannot go with `nodes`")
        if problems:
            raise SpecError(problems)

    @property
    def options(self) -> DrainOptions:
        return DrainOptions(namespaces=tuple(self.namespaces), allow_kube_system=self.allowKubeSystem,
                            ignore_daemonsets=self.ignoreDaemonSets, delete_emptydir_data=self.deleteEmptyDirData,
                            force=self.force)


def node_pods(api: KubeApi, node: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get("/api/v1/pods", fieldSelector=f"spec.nodeName={node}")["items"]
    return items


def daemonsets(api: KubeApi) -> set[tuple[str, str]]:
    items = api.get("/apis/apps/v1/daemonsets")["items"]
    return {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in items}


def busiest(candidates: Sequence[str], pods: Sequence[Mapping[str, Any]], namespaces: Sequence[str],
            how_many: int) -> tuple[list[str], dict[str, int]]:
    """(the `how_many` candidates running the most live pods of `namespaces` (`*`: all but kube-system),
    most first, ties by name; every candidate's count). Only nodes running at least one such pod are
    chosen."""
    counts = dict.fromkeys(candidates, 0)
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        ns = pod.get("metadata", {}).get("namespace")
        phase = pod.get("status", {}).get("phase")
        if node not in counts or phase in ("Succeeded", "Failed") or pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        if ns in namespaces or ("*" in namespaces and ns != "kube-system"):
            counts[node] += 1
    ranked = sorted((n for n in candidates if counts[n]), key=lambda n: (-counts[n], n))
    return ranked[:how_many], counts


def select_nodes(api: KubeApi, kind: str, names: Sequence[str], selector: str | None, count: int | None,
                 percent: float | None, max_nodes: int, rng: random.Random) -> tuple[list[str], list[dict[str, Any]]]:
    """(chosen node names, the candidate Nodes) for a node fault (`drain-node`, `node-failure`); an
    `InjectionError` when nothing matches or the selection is larger than `max_nodes`."""
    candidates: list[dict[str, Any]] = api.get("/api/v1/nodes", labelSelector=selector)["items"]
    chosen, problems = choose_nodes(candidates, list(names), count, percent, max_nodes, rng)
    if problems:
        raise InjectionError(f"{kind}: {'; '.join(problems)}" + (f" (selector {selector!r})" if selector else ""))
    return chosen, candidates


class DrainNode(FaultBase[DrainNodeParams]):
    kind: ClassVar[str] = "drain-node"
    params_type: ClassVar[type] = DrainNodeParams
    level: ClassVar[str] = "api"
    """Acts only through the Kubernetes API."""

    def __init__(self, params: DrainNodeParams, duration: float = 0.0, rng: random.Random | None = None) -> None:
        super().__init__(params, duration, rng)
        self.evictor: Evictor | None = None
        """The evictor of the drain in progress (`stop()` ends its retries)."""

    def plan(self, api: KubeApi) -> tuple[list[str], list[str], dict[str, list[PodDecision]]]:
        """(chosen nodes, those already cordoned, each node's pod decisions); `InjectionError` for a refusal."""
        p = self.params
        chosen, candidates = select_nodes(api, self.kind, p.nodes, p.selector, p.count, p.percent, p.maxNodes,
                                          self.rng)
        if p.select == "busiest":
            names = [n["metadata"]["name"] for n in candidates]
            # As many as the random pick would take, but the ones that run the workload.
            chosen, counts = busiest(names, api.get("/api/v1/pods")["items"], p.namespaces, len(chosen))
            if not chosen:
                raise InjectionError(
                    f"drain-node: select: busiest found no pod of namespaces {', '.join(p.namespaces)} on any "
                    f"candidate node ({', '.join(f'{n}: 0' for n in sorted(counts)) or 'no candidates'}); the "
                    f"workload the drain should exercise is not there: apply it first. Nothing was cordoned")
        spec = {n["metadata"]["name"]: n.get("spec", {}) for n in candidates}
        cordoned = [n for n in chosen if spec[n].get("unschedulable")]
        sets = daemonsets(api)
        decisions = {n: classify(node_pods(api, n), p.options, sets, time.time()) for n in chosen}
        refused = [f"node {n}: {line}" for n, ds in decisions.items() for line in refusal(ds)]
        if refused:
            raise InjectionError("drain-node: refused, nothing was cordoned: " + "; ".join(refused))
        return chosen, cordoned, decisions

    def resolve(self, target: Target, index: int) -> Injection:
        chosen, cordoned, _ = self.plan(target.api())
        undo = Undo("uncordon", {"nodes": [n for n in chosen if n not in cordoned]})
        role = "by name" if self.params.nodes else "busiest" if self.params.select == "busiest" else (
            f"selector {self.params.selector}" if self.params.selector else "random")
        return Injection(self.kind, index, "node", role, tuple(f"node@{n}" for n in chosen), (undo,))

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        api, out = target.api(), []
        sets = daemonsets(api)
        for node in (t.split("@", 1)[1] for t in injection.targets):
            out.append(f"cordon node {node}")
            out += [f"  {d.action} pod {d.namespace}/{d.name}" + (f" ({d.reason})" if d.reason else "")
                    for d in classify(node_pods(api, node), self.params.options, sets, time.time())]
        nodes = injection.undo[0].params["nodes"] if injection.undo else []
        return out, [f"uncordon node {n}" for n in nodes]

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        api, p = target.api(), self.params
        nodes = [t.split("@", 1)[1] for t in injection.targets]
        for node in nodes:
            api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}})
            record("cordon", fault=self.kind, index=injection.index, node=node)
        version = None if p.disableEviction else eviction_version(api)
        for node in nodes:
            self.evictor = p.evictor(api, version)
            self._drain(api, node, injection.index, record)

    def stop(self) -> None:
        """End the drain in progress early (its pods still refused count as blocked)."""
        if self.evictor is not None:
            self.evictor.stop.set()

    def _drain(self, api: KubeApi, node: str, index: int, record: Record) -> None:
        assert self.evictor is not None
        evictor, p = self.evictor, self.params
        started = time.monotonic()
        deadline = started + p.seconds("timeout")
        # Again, now that the node is cordoned: a pod that arrived since resolve is judged too.
        decisions = classify(node_pods(api, node), p.options, daemonsets(api), time.time())
        if refused := refusal(decisions):
            raise InjectionError(f"drain-node: node {node}: " + "; ".join(refused) + " (appeared after the plan)")
        by_uid = {d.uid: d for d in decisions}

        def note(d: PodDecision, outcome: str, **more: Any) -> None:
            record("eviction", fault=self.kind, index=index, node=node, pod=d.key, uid=d.uid, owner=d.owner,
                   outcome=outcome, **({"reason": d.reason} | more))

        def on_result(r: EvictionResult) -> None:
            note(by_uid[r.pod.uid], r.outcome, attempts=r.attempts, blockedSeconds=round(r.blocked_seconds, 3),
                 **({"reason": r.reason} if r.reason else {}))

        evictor.on_refused = lambda pod, message: note(by_uid[pod.uid], "refused", reason=message)
        for d in decisions:
            if d.action == "skip":
                note(d, "skipped")
        results = [evictor.delete(PodRef(d.namespace, d.name, d.uid)) for d in decisions if d.action == "delete"]
        for r in results:
            on_result(r)
        to_evict = [PodRef(d.namespace, d.name, d.uid) for d in decisions if d.action == "evict"]
        results += evictor.evict_all(to_evict, deadline, on_result)
        accepted = [r.pod for r in results if r.outcome in ("evicted", "deleted")]
        remaining = wait_gone(api, accepted, node, deadline, evictor.stop,
                              on_gone=lambda pod: note(by_uid[pod.uid], "terminated"))
        counts = {o: sum(r.outcome == o for r in results) for o in ("blocked", "failed")}
        record("drain", fault=self.kind, index=index, node=node, api=evictor.version or "delete",
               seconds=round(time.monotonic() - started, 3),
               complete=not remaining and not counts["blocked"] and not counts["failed"],
               evicted=len(accepted), skipped=sum(d.action == "skip" for d in decisions),
               remaining=len(remaining), **counts)
        failed = [r for r in results if r.outcome == "failed"]
        if failed:
            raise InjectionError(f"drain-node: node {node}: " + "; ".join(f"{r.pod.key}: {r.reason}" for r in failed))

