"""Workloads on the real lab for the integration tests: a throwaway namespace, Deployments, DaemonSets,
PodDisruptionBudgets, and what the tests ask of their pods."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from waiting import eventually

from chaoslab.clients.kubeapi import KubeApi

CONTROLLERS = ("/apis/apps/v1/namespaces/{}/deployments", "/apis/apps/v1/namespaces/{}/daemonsets",
               "/apis/apps/v1/namespaces/{}/replicasets", "/apis/apps/v1/namespaces/{}/statefulsets")
"""What makes pods in a test's namespace: deleted first, leaving their pods (Orphan), so none come back."""


@contextmanager
def namespace(api: KubeApi, prefix: str, gone_within: float = 90) -> Iterator[str]:
    """A new namespace; afterwards every Node uncordoned (whatever a failed test left cordoned) and the
    namespace deleted and waited for. Its pods are force-deleted first (controllers, then pods at grace 0):
    the namespace controller, finding pods that are still terminating, looks again only after their grace
    period (about 10 s a test)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        for node in api.get("/api/v1/nodes")["items"]:
            if node["spec"].get("unschedulable"):
                api.patch(f"/api/v1/nodes/{node['metadata']['name']}", {"spec": {"unschedulable": None}})
        for path in CONTROLLERS:
            api.request("DELETE", path.format(name), params={"propagationPolicy": "Orphan"})
        api.request("DELETE", f"/api/v1/namespaces/{name}/pods", params={"gracePeriodSeconds": "0"})
        api.delete(f"/api/v1/namespaces/{name}")
        eventually(lambda: api.delete(f"/api/v1/namespaces/{name}") is None, gone_within, f"namespace {name} gone")


def deployment(api: KubeApi, ns: str, name: str, replicas: int, emptydir: bool = False) -> None:
    labels = {"app": name}
    pod_spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx:1.25"}]}
    if emptydir:
        pod_spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    api.create(f"/apis/apps/v1/namespaces/{ns}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}}})


def daemonset(api: KubeApi, ns: str, name: str) -> None:
    labels = {"app": name}
    api.create(f"/apis/apps/v1/namespaces/{ns}/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                 "spec": {"containers": [{"name": "c", "image": "pause"}]}}}})


def pdb(api: KubeApi, ns: str, app: str, min_available: int, allowed: int) -> None:
    """A policy/v1beta1 budget, once the disruption controller has counted the pods (it allows nothing
    before)."""
    api.create(f"/apis/policy/v1beta1/namespaces/{ns}/poddisruptionbudgets", {
        "apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": app},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}}})
    eventually(lambda: api.get(f"/apis/policy/v1beta1/namespaces/{ns}/poddisruptionbudgets/{app}")
               .get("status", {}).get("disruptionsAllowed") == allowed, 30, f"PDB allows {allowed} disruption(s)")


def ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def pods(api: KubeApi, ns: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=f"app={app}")["items"]
    return items


def uids(api: KubeApi, ns: str, app: str) -> set[str]:
    return {p["metadata"]["uid"] for p in pods(api, ns, app)}


def ready_pods(api: KubeApi, ns: str, app: str, n: int) -> list[dict[str, Any]] | None:
    got = [p for p in pods(api, ns, app) if ready(p)]
    return got if len(got) == n else None


@contextmanager
def ready_counts(api: KubeApi, ns: str, app: str, every: float = 0.1) -> Iterator[list[int]]:
    """The Ready pods of `app`, counted every `every` seconds while the block runs: what a budget promises
    (never fewer than minAvailable) checked as it happens, whatever the speed of the replacements."""
    counts: list[int] = []
    failed: list[BaseException] = []
    done = threading.Event()

    def count() -> None:
        try:
            while True:
                counts.append(sum(ready(p) for p in pods(api, ns, app)))
                if done.wait(every):
                    return
        except Exception as exc:  # noqa: BLE001 - re-raised in the test's thread: no silent gap in the counts
            failed.append(exc)

    counter = threading.Thread(target=count, name=f"ready-{app}", daemon=True)
    counter.start()
    try:
        yield counts
    finally:
        done.set()
        counter.join()
    if failed:
        raise AssertionError(f"counting the Ready pods of {app} stopped: {failed[0]}") from failed[0]


def per_node(placed: list[dict[str, Any]]) -> Counter[str]:
    """Node → how many of these pods it runs."""
    return Counter(p["spec"]["nodeName"] for p in placed)


def busiest_node(placed: list[dict[str, Any]]) -> str:
    [(node, _)] = per_node(placed).most_common(1)
    return node


class Events:
    """A fault's `record`, kept for the test to look at."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str, dict[str, Any]]] = []

    def __call__(self, kind: str, **detail: Any) -> None:
        self.items.append((time.monotonic(), kind, detail))

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [d for _, k, d in self.items if k == kind and all(d.get(a) == b for a, b in match.items())]
