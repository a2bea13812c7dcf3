from __future__ import annotations

import random
from typing import Any

import fakes
import pytest

from chaoslab.clients.kubeapi import ApiError
from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults import FAULTS, build
from chaoslab.faults.evict_pods import EvictPods, EvictPodsParams, candidates, exclusion
from chaoslab.spec.loader import load_text


def pod(name: str, ns: str = "shop", owner: bool = True, **extra: Any) -> dict[str, Any]:
    refs = [{"kind": "ReplicaSet", "name": "web-1", "uid": "x", "controller": True}] if owner else []
    p: dict[str, Any] = {"metadata": {"name": name, "namespace": ns, "uid": f"u-{name}", "ownerReferences": refs},
                         "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    for key, value in extra.items():
        p[key] |= value
    return p


class FakeApi(fakes.FakeApi):
    """Pods by namespace; an eviction or delete removes the pod; `refuse` pods answer 429 to evictions."""

    def __init__(self, pods: list[dict[str, Any]], refuse: tuple[str, ...] = ()) -> None:
        self.pods, self.refuse = pods, refuse
        self.calls: list[tuple[str, str]] = []

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path == "/api/v1":
            return {"resources": [{"name": "pods/eviction", "group": "policy", "version": "v1"}]}
        if path == "/api/v1/pods":
            return {"items": list(self.pods)}
        ns = path.split("/")[4]
        return {"items": [p for p in self.pods if p["metadata"]["namespace"] == ns]}

    def _remove(self, path: str) -> None:
        name = path.split("/")[6]
        self.pods = [p for p in self.pods if p["metadata"]["name"] != name]

    def create(self, path: str, body: Any, **kw: Any) -> dict[str, Any]:
        self.calls.append(("evict", path))
        if body["metadata"]["name"] in self.refuse:
            raise ApiError("POST", path, 429, "TooManyRequests", {"message": "would violate the disruption budget"})
        self._remove(path)
        return {}

    def delete(self, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        self.calls.append(("delete", path))
        self._remove(path)
        return {}


class FakeTarget(fakes.FakeTarget):
    name = "fake"

    def __init__(self, api: FakeApi) -> None:
        self._api = api

    def api(self) -> FakeApi:
        return self._api


def evict(pods: list[dict[str, Any]], refuse: tuple[str, ...] = (), **params: Any) -> tuple[FakeApi, EvictPods]:
    fault = EvictPods(EvictPodsParams(**params), rng=random.Random(0))
    return FakeApi(pods, refuse), fault


def test_evict_pods_is_registered() -> None:
    assert FAULTS["evict-pods"] is EvictPods


@pytest.mark.parametrize(("params", "message"), [
    ({}, "name the `namespaces`"),
    ({"namespaces": ["shop"], "count": 4}, "4 pods asked for but maxPods is 3"),
    ({"namespaces": ["shop"], "count": 1, "percent": 10}, "`count` or `percent`, not both"),
    ({"namespaces": ["shop"], "timeout": "soon"}, "timeout"),
    ({"namespaces": ["shop"], "parallelism": 0}, "parallelism must be at least 1"),
])
def test_meaningless_or_too_wide_settings_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build("evict-pods", params)


def test_the_schema_fills_in_defaults_that_match_the_params_type() -> None:
    [exp] = load_text("""
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {name: evict}
spec:
  faults: [{kind: evict-pods, namespaces: [shop], selector: app=web}]
  duration: 10s
""")
    fault = build("evict-pods", exp.faults[0].params)
    assert fault.params.maxPods == 3 and not fault.params.bypassPdb  # type: ignore[attr-defined]
    assert fault.params.seconds("timeout") == 120  # type: ignore[attr-defined]


def test_pods_no_eviction_should_touch_are_not_candidates() -> None:
    params = EvictPodsParams(namespaces=("*",))
    assert exclusion(pod("a"), params) == ""
    assert "set allowKubeSystem" in exclusion(pod("a", ns="kube-system"), params)
    assert exclusion(pod("a", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}), params) == \
        "already being deleted"
    assert exclusion(pod("a", status={"phase": "Succeeded"}), params) == "finished (Succeeded)"
    assert "mirror pod" in exclusion(pod("a", metadata={"annotations": {"kubernetes.io/config.mirror": "x"}}), params)
    assert "use force" in exclusion(pod("a", owner=False), params)
    assert exclusion(pod("a", owner=False), EvictPodsParams(namespaces=("*",), force=True)) == ""
    assert "deleteEmptyDirData" in exclusion(pod("a", spec={"volumes": [{"name": "v", "emptyDir": {}}]}), params)
    eligible, excluded = candidates([pod("b"), pod("a"), pod("c", ns="other")], EvictPodsParams(namespaces=("shop",)))
    assert [p["metadata"]["name"] for p in eligible] == ["a", "b"]
    assert excluded == {"other/c": "namespace 'other' is protected (name it in namespaces)"}


def test_resolve_refuses_more_pods_than_max_pods_and_evicts_nothing() -> None:
    api, fault = evict([pod(f"p{i}") for i in range(4)], namespaces=["shop"], percent=100)
    with pytest.raises(InjectionError, match=r"4 pods selected .* but maxPods is 3; raise maxPods .* nothing was "
                                             r"evicted"):
        fault.resolve(FakeTarget(api), 0)  # type: ignore[arg-type]
    assert api.calls == []


def test_resolve_says_why_no_pod_is_a_candidate() -> None:
    api, fault = evict([pod("bare", owner=False)], namespaces=["shop"])
    with pytest.raises(InjectionError, match=r"no pod matches .*not candidates: shop/bare: no controller"):
        fault.resolve(FakeTarget(api), 0)  # type: ignore[arg-type]


def test_evictions_go_through_the_eviction_api_and_have_no_undo() -> None:
    api, fault = evict([pod("a"), pod("b"), pod("c")], namespaces=["shop"], count=2)
    injection = fault.resolve(FakeTarget(api), 0)  # type: ignore[arg-type]
    assert injection.undo == () and len(injection.targets) == 2
    events: list[tuple[str, dict[str, Any]]] = []
    fault.inject(FakeTarget(api), injection, record=lambda kind, **d: events.append((kind, d)))  # type: ignore[arg-type]
    assert [c[0] for c in api.calls] == ["evict", "evict"] and len(api.pods) == 1
    evicted = [d for k, d in events if k == "eviction" and d["outcome"] == "evicted"]
    assert len(evicted) == 2 and evicted[0]["owner"] == "ReplicaSet/web-1" and evicted[0]["node"] == "n1"
    [summary] = [d for k, d in events if k == "evict"]
    assert summary["complete"] and summary["api"] == "policy/v1" and summary["evicted"] == 2
    assert summary["candidates"] == 3 and summary["excluded"] == 0


def test_a_pdb_refusal_is_retried_until_the_timeout_then_recorded_as_blocked() -> None:
    api, fault = evict([pod("a")], refuse=("a",), namespaces=["shop"], timeout=0.3, retryInterval=0.1)
    injection = fault.resolve(FakeTarget(api), 0)  # type: ignore[arg-type]
    events: list[tuple[str, dict[str, Any]]] = []
    fault.inject(FakeTarget(api), injection, record=lambda kind, **d: events.append((kind, d)))  # type: ignore[arg-type]
    outcomes = [d["outcome"] for k, d in events if k == "eviction"]
    assert outcomes == ["refused", "blocked"]
    assert not next(d for k, d in events if k == "evict")["complete"]
    assert len(api.calls) >= 2 and len(api.pods) == 1


def test_bypass_pdb_deletes_instead() -> None:
    api, fault = evict([pod("a")], refuse=("a",), namespaces=["shop"], bypassPdb=True)
    injection = fault.resolve(FakeTarget(api), 0)  # type: ignore[arg-type]
    events: list[tuple[str, dict[str, Any]]] = []
    fault.inject(FakeTarget(api), injection, record=lambda kind, **d: events.append((kind, d)))  # type: ignore[arg-type]
    assert api.calls == [("delete", "/api/v1/namespaces/shop/pods/a")]
    assert [d["outcome"] for k, d in events if k == "eviction"] == ["deleted", "terminated"]
    assert next(d for k, d in events if k == "evict")["api"] == "delete"
