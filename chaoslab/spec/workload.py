"""`spec.workload`: the Kubernetes objects an experiment needs running before its steady state (the pods a
drain evicts, the budget that guards them), read from manifest files next to the experiment.

    spec:
      workload:
        manifests: [manifests/shop-web.yaml]   # relative to the experiment file
        readyTimeout: 3m                       # default 2m
        keep: false                            # default: remove at the end what chaoslab created

The executor creates the objects that are not there yet (never touching one that exists: it is not
chaoslab's to change or delete), waits until they are ready, runs the experiment, and deletes what it
created (`chaoslab.execute.workload`). Only the kinds in `KINDS` are accepted: each needs its API path,
and "ready" means something chaoslab can check for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Kind:
    api: str
    """The API prefix of its group and version (`/api/v1`, `/apis/apps/v1`)."""
    plural: str
    namespaced: bool = True


KINDS: dict[tuple[str, str], Kind] = {
    ("v1", "Namespace"): Kind("/api/v1", "namespaces", namespaced=False),
    ("v1", "ConfigMap"): Kind("/api/v1", "configmaps"),
    ("v1", "Service"): Kind("/api/v1", "services"),
    ("v1", "ServiceAccount"): Kind("/api/v1", "serviceaccounts"),
    ("apps/v1", "Deployment"): Kind("/apis/apps/v1", "deployments"),
    ("apps/v1", "StatefulSet"): Kind("/apis/apps/v1", "statefulsets"),
    ("apps/v1", "DaemonSet"): Kind("/apis/apps/v1", "daemonsets"),
    ("policy/v1beta1", "PodDisruptionBudget"): Kind("/apis/policy/v1beta1", "poddisruptionbudgets"),
    ("policy/v1", "PodDisruptionBudget"): Kind("/apis/policy/v1", "poddisruptionbudgets"),
    ("rbac.authorization.k8s.io/v1", "Role"): Kind("/apis/rbac.authorization.k8s.io/v1", "roles"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): Kind("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): Kind("/apis/rbac.authorization.k8s.io/v1", "clusterroles",
                                                          namespaced=False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): Kind("/apis/rbac.authorization.k8s.io/v1",
                                                                 "clusterrolebindings", namespaced=False),
    ("batch/v1", "CronJob"): Kind("/apis/batch/v1", "cronjobs"),
    ("batch/v1beta1", "CronJob"): Kind("/apis/batch/v1beta1", "cronjobs"),
}
"""(apiVersion, kind) → where it lives: the kinds chaoslab creates (`spec.workload`, and the game-day
schedule's objects, `chaoslab.ops.schedule`). The lab (Kubernetes 1.20) serves policy/v1beta1 budgets and
batch/v1beta1 CronJobs only."""


@dataclass(frozen=True)
class Workload:
    manifests: tuple[str, ...]
    """As written in the experiment (relative to its file)."""
    objects: tuple[Mapping[str, Any], ...] = ()
    """Every object of the manifests, in file order (a Namespace before what lives in it)."""
    ready_timeout: float = 120.0
    keep: bool = False
    where: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"manifests": list(self.manifests), "objects": [dict(o) for o in self.objects],
                "readyTimeout": self.ready_timeout, "keep": self.keep, "where": self.where}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Workload:
        return cls(tuple(data["manifests"]), tuple(data.get("objects", ())), float(data.get("readyTimeout", 120.0)),
                   bool(data.get("keep", False)), str(data.get("where", "")))


@dataclass(frozen=True)
class ObjectRef:
    """One manifest object: its API path and a name for messages."""

    kind: str
    namespace: str | None
    name: str
    path: str
    """The object's own path (`/apis/apps/v1/namespaces/shop/deployments/web`)."""
    collection: str
    """Where it is created (`/apis/apps/v1/namespaces/shop/deployments`)."""
    body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def ref(obj: Mapping[str, Any]) -> ObjectRef:
    """Where a (checked) manifest object lives; objects without a namespace go to `default`."""
    kind = KINDS[(obj["apiVersion"], obj["kind"])]
    meta = obj["metadata"]
    ns = (meta.get("namespace") or "default") if kind.namespaced else None
    collection = f"{kind.api}/namespaces/{ns}/{kind.plural}" if ns else f"{kind.api}/{kind.plural}"
    return ObjectRef(obj["kind"], ns, meta["name"], f"{collection}/{meta['name']}", collection, obj)


def object_problems(obj: Any, where: str) -> list[str]:
    """What is wrong with one manifest document (`where`: file:line)."""
    if not isinstance(obj, Mapping):
        return [f"{where}: a manifest document must be a Kubernetes object (a mapping), not {type(obj).__name__}"]
    api, kind, meta = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if not isinstance(api, str) or not isinstance(kind, str):
        return [f"{where}: a Kubernetes object needs apiVersion and kind (strings)"]
    if (api, kind) not in KINDS:
        known = ", ".join(f"{k} ({a})" for a, k in KINDS)
        return [f"{where}: {kind} ({api}) is not a kind spec.workload can create; it can create {known}"]
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return [f"{where}: {kind} needs metadata.name (a string)"]
    if "namespace" in meta and not (isinstance(meta["namespace"], str) and meta["namespace"]):
        return [f"{where}: {kind} {meta['name']}: metadata.namespace must be a non-empty string"]
    return []
