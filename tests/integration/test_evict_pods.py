"""evict-pods on the real lab: a PodDisruptionBudget holds the evictions until replacements are Ready,
`bypassPdb` deletes what the budget protects, and the blast radius (maxPods) refuses before anything is
evicted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from waiting import eventually
from workloads import Events, deployment, namespace, pdb, ready_counts, ready_pods, uids

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults import build
from chaoslab.targets.lab import LabTarget


@pytest.fixture
def ns(api: KubeApi) -> Iterator[str]:
    with namespace(api, "evict") as name:
        yield name


def test_a_pdb_lets_one_eviction_through_at_a_time_until_replacements_are_ready(
        api: KubeApi, target: LabTarget, ns: str) -> None:
    deployment(api, ns, "web", 3)
    before = {p["metadata"]["uid"] for p in eventually(lambda: ready_pods(api, ns, "web", 3), 60, "3 pods Ready")}
    pdb(api, ns, "web", 2, 1)
    fault = build("evict-pods", {"namespaces": [ns], "selector": "app=web", "count": 3, "retryInterval": "1s",
                                 "timeout": "90s"})
    injection = fault.resolve(target, 0)
    assert injection.undo == () and len(injection.targets) == 3
    events = Events()
    started = time.monotonic()
    with ready_counts(api, ns, "web") as counts:
        fault.inject(target, injection, record=events)  # type: ignore[call-arg]
    took = time.monotonic() - started
    [summary] = events.of("evict")
    assert summary["complete"] and summary["evicted"] == 3 and summary["api"] == "policy/v1beta1", summary
    # One disruption allowed: the three evictions, sent at once, went through one at a time, each after a
    # replacement was Ready. How many the budget refused depends on how fast replacements get Ready (a fast
    # one lets a slow request through at its first attempt); the budget's promise does not.
    assert counts and min(counts) >= 2, counts
    refused = events.of("eviction", outcome="refused")
    assert refused and all("disruption budget" in e["reason"] for e in refused)
    assert len(events.of("eviction", outcome="terminated")) == 3
    after = eventually(lambda: ready_pods(api, ns, "web", 3), 60, "3 replacements Ready")
    assert not before & {p["metadata"]["uid"] for p in after}
    print(f"3 evictions under minAvailable 2 took {took:.1f} s")


def test_bypass_pdb_deletes_what_the_budget_protects(api: KubeApi, target: LabTarget, ns: str) -> None:
    deployment(api, ns, "db", 2)
    eventually(lambda: ready_pods(api, ns, "db", 2), 60, "2 pods Ready")
    pdb(api, ns, "db", 2, 0)
    held = build("evict-pods", {"namespaces": [ns], "selector": "app=db", "retryInterval": "1s", "timeout": "3s"})
    events = Events()
    held.inject(target, held.resolve(target, 0), record=events)  # type: ignore[call-arg]
    [blocked] = events.of("eviction", outcome="blocked")
    assert blocked["attempts"] >= 2 and "disruption budget" in blocked["reason"]
    assert not events.of("evict")[0]["complete"]
    assert blocked["uid"] in uids(api, ns, "db")

    bypass = build("evict-pods", {"namespaces": [ns], "selector": "app=db", "bypassPdb": True, "timeout": "30s"})
    injection = bypass.resolve(target, 0)
    events = Events()
    bypass.inject(target, injection, record=events)  # type: ignore[call-arg]
    [deleted] = events.of("eviction", outcome="deleted")
    assert events.of("evict")[0]["api"] == "delete" and events.of("evict")[0]["complete"]
    assert deleted["uid"] not in uids(api, ns, "db")
    eventually(lambda: ready_pods(api, ns, "db", 2), 60, "a replacement Ready")


def test_the_blast_radius_refuses_and_nothing_is_evicted(api: KubeApi, target: LabTarget, ns: str) -> None:
    with pytest.raises(SpecError, match="5 pods asked for but maxPods is 3"):
        build("evict-pods", {"namespaces": [ns], "count": 5})
    deployment(api, ns, "web", 4)
    eventually(lambda: ready_pods(api, ns, "web", 4), 60, "4 pods Ready")
    before = uids(api, ns, "web")
    with pytest.raises(InjectionError, match=r"4 pods selected \(.*\) but maxPods is 3; raise maxPods"):
        build("evict-pods", {"namespaces": [ns], "percent": 100}).resolve(target, 0)
    # Pods of namespaces the experiment does not name are never candidates.
    with pytest.raises(InjectionError, match="no pod matches"):
        build("evict-pods", {"namespaces": ["some-other-namespace"], "selector": "app=web"}).resolve(target, 0)
    time.sleep(1)
    assert uids(api, ns, "web") == before
