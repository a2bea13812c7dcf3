"""What `kubectl drain` does with each pod of a node, as pure logic over pod dicts; and which nodes a drain
picks. Called by the `drain-node` fault (chaoslab.faults.drain_node); the I/O lives in chaoslab.faults.eviction.

kubectl runs its filters in this order and stops at the first that keeps a pod (kubectl/pkg/drain):

1. a pod deleted longer ago than `skip_deleted_after` seconds is skipped (`--skip-wait-for-delete-timeout`);
2. DaemonSet-managed: left in place with `ignore_daemonsets`, else an error; a finished pod (Succeeded,
   Failed) is deleted; an orphan (its DaemonSet is gone) is deleted with `force`, else an error;
3. a mirror pod (annotation `kubernetes.io/config.mirror`) is skipped: deleting it through the API kills
   nothing, the kubelet owns the static pod;
4. emptyDir volumes: the data dies with the pod, so a running pod needs `delete_emptydir_data`;
5. no controller ownerReference (a bare pod): nothing recreates it, so a running pod needs `force`.

chaoslab adds one rule before all of these: a pod in a protected namespace (kube-system unless allowed,
and every namespace the experiment does not name) is left alone. Any error refuses the whole drain, as
kubectl does; unlike kubectl, chaoslab decides this before cordoning, so a refusal changes nothing.

    >>> plan = classify([pod], DrainOptions(namespaces=("default",), force=True))
    >>> [(d.action, d.reason) for d in plan]
    [('evict', 'deleting Pods that declare no controller')]
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chaoslab.faults.selection import ALL_NAMESPACES, KUBE_SYSTEM, choose, how_many, protection

__all__ = ["ALL_NAMESPACES", "KUBE_SYSTEM", "DrainOptions", "PodDecision", "choose_nodes", "classify", "decide",
           "node_count", "refusal"]

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
FINISHED = ("Succeeded", "Failed")

Action = Literal["evict", "delete", "skip", "error"]
"""evict: through the Eviction API (PDBs apply); delete: a finished pod, deleted outright (the apiserver's
eviction ignores PDBs for it anyway); skip: left in place; error: refuses the drain."""

# kubectl's wording, so people recognise the reasons.
DAEMONSET_FATAL = "DaemonSet-managed Pods (use ignoreDaemonSets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
DAEMONSET_ORPHAN = "its DaemonSet {name!r} is gone (use force to delete it)"
DAEMONSET_ORPHAN_FORCED = "deleting orphaned DaemonSet Pod (DaemonSet {name!r} is gone)"
LOCAL_STORAGE_FATAL = "Pods with local storage (use deleteEmptyDirData to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"
MIRROR = "mirror pod (static pod of the kubelet; the API cannot delete it)"
FINISHED_REASON = "finished ({phase}): deleted without eviction"
DELETED_LONG_AGO = "deleted more than {seconds:g} s ago (skipWaitForDeleteTimeout)"


@dataclass(frozen=True)
class DrainOptions:
    """kubectl drain's flags that decide what happens to a pod, plus chaoslab's namespace protection."""

    namespaces: tuple[str, ...] = ()
    """Namespaces whose pods may be evicted; `*` for all (kube-system still needs `allow_kube_system`)."""
    allow_kube_system: bool = False
    """Evict kube-system pods too (only if `namespaces` includes kube-system or `*`)."""
    ignore_daemonsets: bool = False
    """kubectl --ignore-daemonsets: leave DaemonSet pods in place instead of refusing."""
    delete_emptydir_data: bool = False
    """kubectl --delete-emptydir-data: evict pods with emptyDir volumes (their data is lost)."""
    force: bool = False
    """kubectl --force: evict pods no controller recreates, and orphaned DaemonSet pods."""
    skip_deleted_after: float = 0.0
    """kubectl --skip-wait-for-delete-timeout: skip pods deleted longer ago than this (seconds; 0 = never)."""


@dataclass(frozen=True)
class PodDecision:
    """What the drain does with one pod, and why (empty reason: an ordinary controller-managed pod)."""

    namespace: str
    name: str
    uid: str
    action: Action
    reason: str = ""
    owner: str = ""
    """`Kind/name` of the controller, or empty."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"pod": self.key, "uid": self.uid, "action": self.action, "reason": self.reason,
                "owner": self.owner}


def controller_of(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with `controller: true` (metav1.GetControllerOf), or None."""
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def has_local_storage(pod: Mapping[str, Any]) -> bool:
    return any("emptyDir" in v for v in pod.get("spec", {}).get("volumes") or [])


def _deleted_seconds_ago(pod: Mapping[str, Any], now: float) -> float | None:
    stamp = pod.get("metadata", {}).get("deletionTimestamp")
    if not stamp:
        return None
    return now - datetime.fromisoformat(str(stamp)).timestamp()


def decide(pod: Mapping[str, Any], options: DrainOptions, daemonsets: Collection[tuple[str, str]] = (),
           now: float = 0.0) -> PodDecision:
    """What kubectl drain does with `pod`. `daemonsets`: the (namespace, name) of DaemonSets that exist
    (only consulted for DaemonSet pods); `now`: wall-clock seconds (only for `skip_deleted_after`)."""
    meta = pod.get("metadata", {})
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    ref = controller_of(pod)
    owner = f"{ref.get('kind')}/{ref.get('name')}" if ref else ""
    phase = pod.get("status", {}).get("phase")
    finished = phase in FINISHED

    def out(action: Action, reason: str = "") -> PodDecision:
        return PodDecision(ns, name, meta.get("uid", ""), action, reason, owner)

    if protected := protection(ns, options.namespaces, options.allow_kube_system):
        return out("skip", protected)
    if options.skip_deleted_after > 0:
        ago = _deleted_seconds_ago(pod, now)
        if ago is not None and ago > options.skip_deleted_after:
            return out("skip", DELETED_LONG_AGO.format(seconds=options.skip_deleted_after))
    reason = ""
    if ref is not None and ref.get("kind") == "DaemonSet" and not finished:
        if (ns, ref.get("name")) in daemonsets:
            return out("skip", DAEMONSET_WARNING) if options.ignore_daemonsets else out("error", DAEMONSET_FATAL)
        if not options.force:
            return out("error", DAEMONSET_ORPHAN.format(name=ref.get("name")))
        reason = DAEMONSET_ORPHAN_FORCED.format(name=ref.get("name"))  # and on through the other rules
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return out("skip", MIRROR)
    if finished:
        # kubectl evicts it, and the apiserver then deletes it without looking at PDBs: the same, directly.
        return out("delete", FINISHED_REASON.format(phase=phase))
    if has_local_storage(pod):
        if not options.delete_emptydir_data:
            return out("error", LOCAL_STORAGE_FATAL)
        reason = LOCAL_STORAGE_WARNING
    if ref is None:
        if not options.force:
            return out("error", UNMANAGED_FATAL)
        reason = UNMANAGED_WARNING  # kubectl keeps the last filter's warning only
    return out("evict", reason)


def classify(pods: Iterable[Mapping[str, Any]], options: DrainOptions,
             daemonsets: Collection[tuple[str, str]] = (), now: float = 0.0) -> list[PodDecision]:
    """`decide` for every pod, in namespace/name order."""
    decisions = [decide(p, options, daemonsets, now) for p in pods]
    return sorted(decisions, key=lambda d: (d.namespace, d.name))


def refusal(decisions: Iterable[PodDecision]) -> list[str]:
    """kubectl's error lines for the pods that refuse the drain, grouped by reason:
    `cannot delete Pods with local storage (use ...): default/a, default/b`."""
    grouped: dict[str, list[str]] = {}
    for d in decisions:
        if d.action == "error":
            grouped.setdefault(d.reason, []).append(d.key)
    return sorted(f"{r if r.lower().startswith('cannot delete') else 'cannot delete ' + r}: {', '.join(pods)}"
                  for r, pods in grouped.items())


# ---- which nodes --------------------------------------------------------------------------------
def node_count(candidates: int, count: int | None, percent: float | None) -> int:
    """How many of `candidates` nodes to drain: `count`, or `percent` of them rounded up, else 1."""
    return how_many(candidates, count, percent)


def choose_nodes(nodes: Sequence[Mapping[str, Any]], names: Sequence[str], count: int | None,
                 percent: float | None, max_nodes: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """(chosen node names, problems): `chaoslab.faults.selection.choose` over Node objects, limited by maxNodes.
    `nodes` are the candidates (already narrowed by label selector)."""
    return choose([n["metadata"]["name"] for n in nodes], names, count, percent, max_nodes, rng, "node",
                  "maxNodes")
