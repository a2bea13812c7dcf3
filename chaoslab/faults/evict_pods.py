"""`evict-pods`: evict pods chosen by namespace and label selector through the Eviction API, so
PodDisruptionBudgets hold — or, only when the experiment says `bypassPdb: true`, delete them outright —
within a blast radius the experiment states.

Which pods: the pods of the `namespaces` named (`*` for all; kube-system only with `allowKubeSystem`,
the same rules and names as `drain-node`, see chaoslab.faults.selection) that match `selector`, then `count`
(default 1) or `percent` of them at random; more than `maxPods` (default 3) is refused, never cut down.
Pods that no eviction should touch are not candidates: pods already being deleted, finished pods, mirror
pods, pods no controller recreates (unless `force`) and pods with emptyDir data (unless
`deleteEmptyDirData`) — the last two as in `kubectl drain`.

There is no undo: the pods' controllers create replacements, and the point of the fault is to watch how
fast they do. The Injection's undo is empty (nothing to write, nothing for `chaoslab recover` to do).

Inject evicts the chosen pods, `parallelism` at a time, retrying PDB refusals every `retryInterval` until
`timeout`, then waits (within the same `timeout`) for them to be gone. Pods a PDB still protects at the
timeout are an observation, not an error; other API errors fail the injection.

Timeline events (the same vocabulary as `drain-node`): ``eviction`` per pod (``node``, ``pod`` ns/name,
``uid``, ``owner`` Kind/name, ``outcome``: `refused` at the first PDB refusal, then `evicted`,
`deleted` (bypassPdb), `gone`, `blocked` or `failed` with ``attempts`` and ``blockedSeconds``, and
`terminated` once the pod is gone); ``evict`` once at the end (``complete``, ``seconds``, counts
``selected``, ``evicted``, ``blocked``, ``failed``, ``remaining``, ``candidates``, ``excluded`` and
``api`` the Eviction version used or `delete`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults.base import FaultBase, Injection, Record, ignore_events
from chaoslab.faults.drain import FINISHED, MIRROR_ANNOTATION, controller_of, has_local_storage
from chaoslab.faults.eviction import (
    EvictionResult,
    EvictionSettings,
    Evictor,
    PodRef,
    eviction_version,
    wait_gone,
)
from chaoslab.faults.selection import (
    ALL_NAMESPACES,
    choose,
    namespace_problems,
    protection,
    selection_problems,
)
from chaoslab.targets import Target

#: The default blast radius: a handful of pods, so a selector that matches too much is refused.
DEFAULT_MAX_PODS = 3


@dataclass(frozen=True)
class EvictPodsParams(EvictionSettings):
    namespaces: Sequence[str] = field(default_factory=tuple)
    """Namespaces whose pods may be evicted; `*` for all (kube-system still needs `allowKubeSystem`)."""
    allowKubeSystem: bool = False  # camelCase fields: the YAML spelling, as build() passes them
    """Evict kube-system pods too (when `namespaces` includes it or `*`)."""
    selector: str | None = None
    """Label selector for the pods, e.g. `app=web` (default: every pod of the namespaces)."""
    count: int | None = None
    """How many of the candidate pods to evict, picked at random (default 1)."""
    percent: float | None = None
    """Or this percentage of the candidates, rounded up."""
    maxPods: int = DEFAULT_MAX_PODS
    """Blast-radius limit: refuse to evict more pods than this (default 3)."""
    bypassPdb: bool = False
    """Delete the pods instead of evicting them: PodDisruptionBudgets are bypassed (default false)."""
    force: bool = False
    """Also evict pods that no controller recreates (they are gone for good)."""
    deleteEmptyDirData: bool = False
    """Also evict pods with emptyDir volumes, whose data is lost."""
    timeout: str | float = "2m"
    """How long evictions are retried while a PDB refuses, and evicted pods waited for (default 2m)."""

    def __post_init__(self) -> None:
        problems = self.eviction_problems("evict-pods")
        problems += namespace_problems("evict-pods", self.namespaces)
        problems += selection_problems("evict-pods", "pod", (), self.selector, self.count, self.percent,
                                       self.maxPods, "maxPods")
        if problems:
            raise SpecError(problems)


def exclusion(pod: Mapping[str, Any], params: EvictPodsParams) -> str:
    """Why `pod` is not a candidate for eviction, or "" when it is."""
    meta = pod.get("metadata", {})
    if reason := protection(meta.get("namespace", ""), params.namespaces, params.allowKubeSystem):
        return reason
    if meta.get("deletionTimestamp"):
        return "already being deleted"
    if (phase := pod.get("status", {}).get("phase")) in FINISHED:
        return f"finished ({phase})"
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return "mirror pod (static pod of the kubelet; the API cannot delete it)"
    if controller_of(pod) is None and not params.force:
        return "no controller recreates it (use force to evict it anyway)"
    if has_local_storage(pod) and not params.deleteEmptyDirData:
        return "its emptyDir data would be lost (use deleteEmptyDirData)"
    return ""


def candidates(pods: Sequence[dict[str, Any]], params: EvictPodsParams
               ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(the pods that may be evicted, in ns/name order; pod ns/name → why each other pod may not)."""
    eligible, excluded = [], {}
    for pod in sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        if reason := exclusion(pod, params):
            excluded[key] = reason
        else:
            eligible.append(pod)
    return eligible, excluded


def list_pods(api: KubeApi, namespaces: Sequence[str], selector: str | None) -> list[dict[str, Any]]:
    if ALL_NAMESPACES in namespaces:
        items: list[dict[str, Any]] = api.get("/api/v1/pods", labelSelector=selector)["items"]
        return items
    return [p for ns in dict.fromkeys(namespaces)
            for p in api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]]


class EvictPods(FaultBase[EvictPodsParams]):
    kind: ClassVar[str] = "evict-pods"
    params_type: ClassVar[type] = EvictPodsParams
    level: ClassVar[str] = "api"
    """Acts only through the Kubernetes API."""

    def __init__(self, params: EvictPodsParams, duration: float = 0.0, rng: random.Random | None = None) -> None:
        super().__init__(params, duration, rng)
        self.chosen: dict[int, list[dict[str, Any]]] = {}
        """The pods resolve chose, per fault index (inject evicts exactly these, by uid)."""
        self.pool: dict[int, tuple[int, int]] = {}
        """Per fault index: (candidate pods, pods excluded) when it was resolved."""
        self.evictor: Evictor | None = None

    def plan(self, api: KubeApi) -> tuple[list[dict[str, Any]], int, dict[str, str]]:
        """(chosen pods, how many were candidates, excluded pod → reason); `InjectionError` for a refusal."""
        p = self.params
        eligible, excluded = candidates(list_pods(api, p.namespaces, p.selector), p)
        by_key = {f"{q['metadata']['namespace']}/{q['metadata']['name']}": q for q in eligible}
        chosen, problems = choose(list(by_key), (), p.count, p.percent, p.maxPods, self.rng, "pod", "maxPods")
        if problems:
            where = f"namespaces {', '.join(p.namespaces)}" + (f", selector {p.selector!r}" if p.selector else "")
            why = "; ".join(f"{k}: {r}" for k, r in list(excluded.items())[:5])
            raise InjectionError(f"evict-pods: {'; '.join(problems)} ({where})" +
                                 (f"; not candidates: {why}" if why and not eligible else "") + "; nothing was evicted")
        return [by_key[k] for k in chosen], len(eligible), excluded

    def resolve(self, target: Target, index: int) -> Injection:
        chosen, eligible, excluded = self.plan(target.api())
        self.chosen[index], self.pool[index] = chosen, (eligible, len(excluded))
        role = f"selector {self.params.selector}" if self.params.selector else "random"
        # No undo: the pods' controllers recreate them.
        return Injection(self.kind, index, "pod", role, tuple(f"pod@{PodRef.of(q).key}" for q in chosen), ())

    def stop(self) -> None:
        """End the evictions in progress early (pods still refused count as blocked)."""
        if self.evictor is not None:
            self.evictor.stop.set()

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        verb = "delete" if self.params.bypassPdb else "evict"
        return [f"{verb} {t}" for t in injection.targets], ["none: the pods' controllers recreate them"]

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        api, p = target.api(), self.params
        if injection.index not in self.chosen:  # resolved elsewhere: choose again, within the same limits
            chosen, eligible, excluded = self.plan(api)
            self.chosen[injection.index], self.pool[injection.index] = chosen, (eligible, len(excluded))
        pods = self.chosen[injection.index]
        info = {q["metadata"]["uid"]: q for q in pods}
        version = None if p.bypassPdb else eviction_version(api)
        self.evictor = evictor = p.evictor(api, version)
        started = time.monotonic()
        deadline = started + p.seconds("timeout")

        def note(pod: PodRef, outcome: str, **more: Any) -> None:
            q = info.get(pod.uid, {})
            ref = controller_of(q) if q else None
            record("eviction", fault=self.kind, index=injection.index, node=q.get("spec", {}).get("nodeName", ""),
                   pod=pod.key, uid=pod.uid, owner=f"{ref.get('kind')}/{ref.get('name')}" if ref else "",
                   outcome=outcome, **more)

        def on_result(r: EvictionResult) -> None:
            note(r.pod, r.outcome, attempts=r.attempts, blockedSeconds=round(r.blocked_seconds, 3),
                 **({"reason": r.reason} if r.reason else {}))

        evictor.on_refused = lambda pod, message: note(pod, "refused", reason=message)
        refs = [PodRef.of(q) for q in pods]
        results = evictor.evict_all(refs, deadline, on_result)
        accepted = [r.pod for r in results if r.outcome in ("evicted", "deleted")]
        remaining = wait_gone(api, accepted, None, deadline, evictor.stop,
                              on_gone=lambda pod: note(pod, "terminated"))
        counts = {o: sum(r.outcome == o for r in results) for o in ("blocked", "failed")}
        record("evict", fault=self.kind, index=injection.index, api=version or "delete",
               seconds=round(time.monotonic() - started, 3),
               complete=not remaining and not counts["blocked"] and not counts["failed"],
               selected=len(refs), evicted=len(accepted), remaining=len(remaining),
               candidates=self.pool[injection.index][0], excluded=self.pool[injection.index][1], **counts)
        failed = [r for r in results if r.outcome == "failed"]
        if failed:
            raise InjectionError("evict-pods: " + "; ".join(f"{r.pod.key}: {r.reason}" for r in failed))
