"""Workloads probe: the Deployments and StatefulSets an experiment disrupts, their pods and the
PodDisruptionBudgets over them, so `chaoslab.judge.disruption` can tell how fast evicted pods were replaced, how
long a workload was short of ready replicas and whether a budget was breached.

Every `interval` (500 ms) one list per namespace of Deployments, StatefulSets (both filtered by
`selector`), Pods and PodDisruptionBudgets (`policy/v1` when the server has it, else `policy/v1beta1`,
as on the lab's Kubernetes 1.20). Lists carry `resourceVersion=0`, so the apiserver answers from its
watch cache, not from etcd. Samples:

- `workloads/Deployment/<ns>/<name>` (or `StatefulSet/...`), every interval: ``desired`` (spec.replicas),
  ``ready`` (status.readyReplicas), ``available``, ``updated``, ``healthy`` (pods of it Ready and not
  being deleted, counted from the same pod list).
- `workloads/pod`, when a pod of a selected workload is first seen and whenever its node, readiness or
  deletion changes: ``uid``, ``pod`` (ns/name), ``workload``, ``node``, ``created`` (creationTimestamp),
  ``ready``, ``deleting``, ``gone`` (it left the list).
- `workloads/pdb/<ns>/<name>`, every interval, for budgets selecting a pod of a selected workload:
  ``healthy`` (pods it selects that are Ready and not being deleted, from the same pod list),
  ``required`` (what its spec demands, `chaoslab.judge.disruption.required_healthy`), ``minAvailable``,
  ``maxUnavailable``, and the disruption controller's ``currentHealthy``, ``desiredHealthy``,
  ``disruptionsAllowed``, ``expectedPods``, plus ``workloads`` it covers.

Which workloads: `namespaces` (a list, or `*` for all; by default the session passes the namespaces the
experiment's faults name) and an optional label `selector` on the workloads.

Load: 4 lists per namespace per interval (3 without a policy API): 8 requests/s per namespace at 500 ms,
each served from the apiserver's cache; the pod list is the largest answer (every pod of the namespace).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import TargetError
from chaoslab.judge.disruption import (
    POD,
    PROBE,
    WORKLOAD_KINDS,
    matches,
    pod_healthy,
    pod_ready,
    required_healthy,
)
from chaoslab.probes.base import Sampler

PLURAL = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


def policy_version(api: KubeApi) -> str | None:
    """`policy/v1` or `policy/v1beta1`, whichever serves PodDisruptionBudgets (v1 preferred); None if none."""
    try:
        versions = [v["groupVersion"] for v in api.get("/apis/policy").get("versions", [])]
    except TargetError:
        return None
    for gv in ("policy/v1", "policy/v1beta1"):
        if gv in versions:
            try:
                resources = api.get(f"/apis/{gv}").get("resources", [])
            except TargetError:
                continue
            if any(r.get("name") == "poddisruptionbudgets" for r in resources):
                return gv
    return None


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


class WorkloadsProbe(Sampler):
    kind = PROBE
    interval = 0.5
    params = ("namespaces", "selector")

    def __init__(self, *args: Any, namespaces: Sequence[str] = ("default",), selector: str | None = None,
                 **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.namespaces = tuple(namespaces)
        self.selector = selector
        self.seen: dict[str, tuple[Any, ...]] = {}
        """uid → (node, ready, deleting) last recorded, with the pod's sample values."""
        self.last: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        self.api = self.target.api()
        self.policy = policy_version(self.api)
        super().start()

    def _scopes(self) -> list[str]:
        """Path prefixes to list under: one per namespace, or the whole cluster for `*`."""
        if "*" in self.namespaces:
            return [""]
        return [f"/namespaces/{ns}" for ns in self.namespaces]

    def _list(self, group: str, scope: str, plural: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.api.get(f"{group}{scope}/{plural}", resourceVersion="0",
                                                   **params)["items"]
        return items

    def sample_once(self) -> None:
        workloads: list[tuple[str, dict[str, Any]]] = []
        pods: list[dict[str, Any]] = []
        pdbs: list[dict[str, Any]] = []
        t = self.timeline.now()
        try:
            for scope in self._scopes():
                for kind in WORKLOAD_KINDS:
                    workloads += [(kind, w) for w in self._list("/apis/apps/v1", scope, PLURAL[kind],
                                                                labelSelector=self.selector)]
                pods += self._list("/api/v1", scope, "pods")
                if self.policy:
                    pdbs += self._list(f"/apis/{self.policy}", scope, "poddisruptionbudgets")
        except TargetError as exc:
            # The API is down or slow (that may be the fault): no sample this tick, which the timeline shows.
            self.timeline.sample(PROBE, "error", t=t, error=str(exc)[:200])
            return
        self.record(t, workloads, pods, pdbs)

    def record(self, t: float, workloads: list[tuple[str, dict[str, Any]]], pods: list[dict[str, Any]],
               pdbs: list[dict[str, Any]]) -> None:
        """One consistent view (the lists of one tick) into samples."""
        owner: dict[str, str] = {}
        for kind, w in workloads:
            ns, selector = w["metadata"]["namespace"], (w.get("spec") or {}).get("selector") or {}
            name = f"{kind}/{_key(w)}"
            mine = [p for p in pods if p["metadata"].get("namespace") == ns
                    and matches(selector, p["metadata"].get("labels"))]
            for p in mine:
                owner.setdefault(p["metadata"]["uid"], name)
            spec, status = w.get("spec") or {}, w.get("status") or {}
            self.timeline.sample(PROBE, name, t=t, desired=int(spec.get("replicas", 1)),
                                 ready=int(status.get("readyReplicas") or 0),
                                 available=int(status.get("availableReplicas") or 0),
                                 updated=int(status.get("updatedReplicas") or 0),
                                 healthy=sum(pod_healthy(p) for p in mine))
        current = set()
        for p in pods:
            uid = p["metadata"]["uid"]
            if uid not in owner:
                continue
            current.add(uid)
            state = (p["spec"].get("nodeName"), pod_ready(p), bool(p["metadata"].get("deletionTimestamp")))
            if self.seen.get(uid) == state:
                continue
            self.seen[uid] = state
            self.last[uid] = {"uid": uid, "pod": _key(p), "workload": owner[uid], "node": state[0],
                              "created": p["metadata"].get("creationTimestamp"), "ready": state[1],
                              "deleting": state[2], "gone": False}
            self.timeline.sample(PROBE, POD, t=t, **self.last[uid])
        for uid in [u for u in self.seen if u not in current]:
            del self.seen[uid]
            self.timeline.sample(PROBE, POD, t=t, **(self.last.pop(uid) | {"ready": False, "gone": True}))
        for b in pdbs:
            ns, spec, status = b["metadata"]["namespace"], b.get("spec") or {}, b.get("status") or {}
            selected = [p for p in pods if p["metadata"].get("namespace") == ns
                        and matches(spec.get("selector"), p["metadata"].get("labels"))]
            covers = sorted({owner[p["metadata"]["uid"]] for p in selected if p["metadata"]["uid"] in owner})
            if not covers:
                continue
            expected = status.get("expectedPods")
            self.timeline.sample(PROBE, f"pdb/{_key(b)}", t=t, healthy=sum(pod_healthy(p) for p in selected),
                                 required=required_healthy(spec, expected),
                                 minAvailable=spec.get("minAvailable"), maxUnavailable=spec.get("maxUnavailable"),
                                 currentHealthy=status.get("currentHealthy"),
                                 desiredHealthy=status.get("desiredHealthy"),
                                 disruptionsAllowed=status.get("disruptionsAllowed"), expectedPods=expected,
                                 workloads=covers)

    @property
    def requests_per_second(self) -> float:
        return len(self._scopes()) * 4 / self.interval
