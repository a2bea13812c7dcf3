"""Eviction: API discovery, PDB refusals retried until the deadline, deletes, waiting for pods to go."""

from __future__ import annotations

import threading
import time
from typing import Any

import fakes

from chaoslab.clients.kubeapi import ApiError
from chaoslab.faults.eviction import Evictor, PodRef, eviction_body, eviction_version, wait_gone


class FakeApi(fakes.FakeApi):
    """Answers eviction POSTs from a script per pod: an int status (429, 404, 500) or 201."""

    def __init__(self, resources: list[dict[str, Any]] | None = None, policy: dict[str, Any] | None = None,
                 script: dict[str, list[int]] | None = None) -> None:
        self.resources = resources or []
        self.policy = policy
        self.script = script or {}
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.deletes: list[tuple[str, Any]] = []
        self.lists: list[list[dict[str, Any]]] = []
        self.lock = threading.Lock()

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path == "/api/v1":
            return {"resources": self.resources}
        if path == "/apis/policy":
            if self.policy is None:
                raise ApiError("GET", path, 404, "NotFound", {})
            return self.policy
        if path == "/api/v1/pods":
            return {"items": self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]}
        raise AssertionError(path)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.posts.append((path, body))
            name = path.split("/")[-2]
            status = self.script.get(name, [201]).pop(0) if self.script.get(name) else 201
        if status >= 300:
            raise ApiError("POST", path, status, "TooManyRequests" if status == 429 else "x",
                           {"message": f"Cannot evict pod as it would violate the pod's disruption budget ({name})"})
        return {}

    def delete(self, path: str, body: Any = None, **params: Any) -> dict[str, Any] | None:
        self.deletes.append((path, body))
        return None if "gone" in path else {}


EVICTION_V1BETA1 = {"name": "pods/eviction", "group": "policy", "version": "v1beta1", "kind": "Eviction"}


def test_the_eviction_version_comes_from_the_pods_eviction_resource() -> None:
    assert eviction_version(FakeApi([EVICTION_V1BETA1])) == "policy/v1beta1"  # type: ignore[arg-type]
    v1 = {**EVICTION_V1BETA1, "version": "v1"}
    assert eviction_version(FakeApi([v1])) == "policy/v1"  # type: ignore[arg-type]


def test_a_server_that_does_not_say_uses_the_policy_groups_preferred_version() -> None:
    api = FakeApi([{"name": "pods/eviction", "kind": "Eviction"}],
                  policy={"preferredVersion": {"groupVersion": "policy/v1"}})
    assert eviction_version(api) == "policy/v1"  # type: ignore[arg-type]


def test_no_eviction_api_means_delete() -> None:
    assert eviction_version(FakeApi([{"name": "pods"}])) is None  # type: ignore[arg-type]


def test_eviction_body_carries_the_grace_period_only_when_set() -> None:
    pod = PodRef("default", "web-1", "u1")
    assert "deleteOptions" not in eviction_body(pod, "policy/v1", None)
    assert eviction_body(pod, "policy/v1beta1", 0)["deleteOptions"] == {"gracePeriodSeconds": 0}


def test_a_pdb_refusal_is_retried_until_it_is_accepted() -> None:
    api = FakeApi(script={"web-1": [429, 429, 201]})
    refused: list[str] = []
    ev = Evictor(api, "policy/v1beta1", retry_interval=0.01,  # type: ignore[arg-type]
                 on_refused=lambda pod, msg: refused.append(msg))
    result = ev.evict(PodRef("default", "web-1", "u1"), time.monotonic() + 5)
    assert (result.outcome, result.attempts) == ("evicted", 3)
    assert result.blocked_seconds > 0 and "disruption budget" in result.reason
    assert len(refused) == 1  # noted once, at the first refusal
    assert api.posts[0][0] == "/api/v1/namespaces/default/pods/web-1/eviction"


def test_a_refusal_still_standing_at_the_deadline_counts_as_blocked() -> None:
    api = FakeApi(script={"web-1": [429] * 1000})
    ev = Evictor(api, "policy/v1beta1", retry_interval=0.05)  # type: ignore[arg-type]
    started = time.monotonic()
    result = ev.evict(PodRef("default", "web-1", "u1"), started + 0.3)
    assert result.outcome == "blocked" and result.attempts >= 2
    assert time.monotonic() - started < 1.0


def test_a_stop_ends_the_retries_at_once() -> None:
    api = FakeApi(script={"web-1": [429] * 1000})
    ev = Evictor(api, "policy/v1beta1", retry_interval=10)  # type: ignore[arg-type]
    threading.Timer(0.1, ev.stop.set).start()
    started = time.monotonic()
    assert ev.evict(PodRef("default", "web-1", "u1"), started + 60).outcome == "blocked"
    assert time.monotonic() - started < 2.0


def test_404_is_gone_and_other_errors_fail_without_retry() -> None:
    api = FakeApi(script={"a": [404], "b": [500, 201]})
    ev = Evictor(api, "policy/v1", retry_interval=0.01)  # type: ignore[arg-type]
    assert ev.evict(PodRef("default", "a", "u"), time.monotonic() + 5).outcome == "gone"
    failed = ev.evict(PodRef("default", "b", "u"), time.monotonic() + 5)
    assert (failed.outcome, failed.attempts) == ("failed", 1) and "500" in failed.reason


def test_without_an_eviction_version_pods_are_deleted_with_the_grace_period() -> None:
    api = FakeApi()
    ev = Evictor(api, None, grace_period=3)  # type: ignore[arg-type]
    assert ev.evict(PodRef("default", "a", "u"), time.monotonic() + 5).outcome == "deleted"
    assert ev.evict(PodRef("default", "gone", "u"), time.monotonic() + 5).outcome == "gone"
    assert api.deletes[0][1]["gracePeriodSeconds"] == 3 and not api.posts


def test_evict_all_runs_in_parallel_up_to_the_bound_and_keeps_the_order() -> None:
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    class Slow(FakeApi):
        def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.05)
            with lock:
                in_flight[0] -= 1
            return {}

    pods = [PodRef("default", f"p{i}", f"u{i}") for i in range(12)]
    seen: list[str] = []
    results = Evictor(Slow(), "policy/v1", parallelism=4).evict_all(  # type: ignore[arg-type]
        pods, time.monotonic() + 5, on_result=lambda r: seen.append(r.pod.name))
    assert [r.pod for r in results] == pods and all(r.outcome == "evicted" for r in results)
    assert peak[0] == 4 and sorted(seen) == sorted(p.name for p in pods)


def test_wait_gone_counts_a_pod_gone_when_its_uid_leaves_the_node() -> None:
    api = FakeApi()
    api.lists = [[{"metadata": {"uid": "u1"}}, {"metadata": {"uid": "u2"}}],
                 [{"metadata": {"uid": "u2"}}, {"metadata": {"uid": "new"}}],
                 [{"metadata": {"uid": "new"}}]]
    gone: list[str] = []
    left = wait_gone(api, [PodRef("d", "a", "u1"), PodRef("d", "b", "u2")], "n1",  # type: ignore[arg-type]
                     time.monotonic() + 5, threading.Event(), on_gone=lambda p: gone.append(p.name), interval=0.01)
    assert left == [] and gone == ["a", "b"]


def test_wait_gone_returns_the_pods_still_there_at_the_deadline() -> None:
    api = FakeApi()
    api.lists = [[{"metadata": {"uid": "u1"}}]]
    left = wait_gone(api, [PodRef("d", "a", "u1")], "n1", time.monotonic() + 0.1,  # type: ignore[arg-type]
                     threading.Event(), interval=0.02)
    assert [p.name for p in left] == ["a"]


def test_wait_gone_polls_soon_after_the_evictions_then_backs_off_to_the_interval() -> None:
    api = FakeApi()
    api.lists = [[{"metadata": {"uid": "u1"}}]]
    pauses: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            pauses.append(timeout or 0.0)
            return len(pauses) >= 7

    wait_gone(api, [PodRef("d", "a", "u1")], "n1", time.monotonic() + 60, Stop(),  # type: ignore[arg-type]
              interval=1.0, first_interval=0.1)
    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
