"""memory-limit on the real lab: the process really runs in chaoslab's memory cgroup with the limit, a
load that makes the apiserver grow past its headroom really gets it OOM-killed (the kernel's own counter
says so) and the lab restarts it outside that cgroup; the undo, and the dead-man's switch when nobody
undoes, leave the process where it was and no cgroup behind."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from waiting import eventually

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.faults import build
from chaoslab.faults.base import Injection, apply_undo
from chaoslab.faults.memory_cgroup import ROOT, memory_cgroup
from chaoslab.targets.lab import LabTarget

NAMESPACE = "chaoslab-memory-itest"


def cgroup_of(pid: int) -> str:
    return memory_cgroup(Path(f"/proc/{pid}/cgroup").read_text())


def injected(target: LabTarget, params: dict[str, Any], duration: float = 60) -> tuple[Injection, list[Any]]:
    fault = build("memory-limit", params, duration=duration)
    injection = fault.resolve(target, 0)
    events: list[Any] = []
    fault.inject(target, injection, record=lambda kind, **detail: events.append((kind, detail)))
    return injection, events


def ready(target: LabTarget, host: str) -> bool:
    url = target.apiserver_endpoints()[host]
    try:
        return target.api().session.get(f"{url}/readyz", timeout=2).status_code == 200
    except OSError:
        return False


@pytest.fixture
def ballast(api: KubeApi) -> Iterator[None]:
    """40 ConfigMaps of 256 KiB (10 MiB), so that each unpaginated LIST makes an apiserver hold tens of MiB."""
    if api.request("GET", f"/api/v1/namespaces/{NAMESPACE}").status_code == 404:
        api.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    for i in range(40):
        if api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/ballast-{i}").status_code == 404:
            api.create(f"/api/v1/namespaces/{NAMESPACE}/configmaps",
                       {"metadata": {"name": f"ballast-{i}"}, "data": {"x": "x" * (256 << 10)}})
    yield
    api.delete(f"/api/v1/namespaces/{NAMESPACE}")


def test_the_limit_is_real_and_the_undo_puts_the_process_back(target: LabTarget) -> None:
    host = "cp2"
    pid = target.pid("kube-apiserver", host)
    assert pid is not None
    before = cgroup_of(pid)
    injection, events = injected(target, {"host": host, "headroom": "512Mi"})
    u = injection.undo[0].params
    try:
        assert cgroup_of(pid) == u["cgroup"] == f"{before.rstrip('/')}/{Path(u['cgroup']).name}"
        d = ROOT / u["cgroup"].lstrip("/")
        assert int((d / "memory.limit_in_bytes").read_text()) == 512 << 20
        [(kind, detail)] = events
        assert kind == "memory-limit" and detail["pid"] == pid and detail["rss_bytes"] > 0
    finally:
        released: list[Any] = []
        apply_undo(target, injection.undo[0], record=lambda kind, **detail: released.append((kind, detail)))
    assert cgroup_of(pid) == before and not (ROOT / u["cgroup"].lstrip("/")).exists()
    assert target.pid("kube-apiserver", host) == pid  # untouched: it never came near its limit
    [(kind, detail)] = released
    assert kind == "memory-released" and detail["oom_kills"] == 0
    apply_undo(target, injection.undo[0])  # a second undo (recover after a revert) finds nothing to do


def test_an_apiserver_that_outgrows_its_headroom_is_oom_killed_and_restarted_outside(
        target: LabTarget, ballast: None) -> None:
    host = "cp3"
    pid = target.pid("kube-apiserver", host)
    assert pid is not None
    before = cgroup_of(pid)
    injection, _ = injected(target, {"host": host, "headroom": "32Mi"})
    url = target.apiserver_endpoints()[host]
    session = target.api().with_pool(8).session

    def list_all(_: int) -> int:
        try:
            return session.get(f"{url}/api/v1/configmaps", params={"resourceVersion": ""}, timeout=30).status_code
        except OSError:
            return 0  # the apiserver died under the request

    try:
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while target.pid("kube-apiserver", host) == pid and time.monotonic() < deadline:
                list(pool.map(list_all, range(8)))
        restarted = target.pid("kube-apiserver", host)
    finally:
        released: list[Any] = []
        apply_undo(target, injection.undo[0], record=lambda kind, **detail: released.append((kind, detail)))
    assert restarted != pid, "the capped apiserver survived 60 s of unpaginated LISTs"
    [(_, detail)] = released
    assert detail["oom_kills"] >= 1  # the kernel's own record: an OOM kill in that cgroup
    assert not (ROOT / injection.undo[0].params["cgroup"].lstrip("/")).exists()
    eventually(lambda: ready(target, host), 90, f"the restarted kube-apiserver on {host} ready")
    new = target.pid("kube-apiserver", host)
    assert new is not None and cgroup_of(new) == before  # started by the lab, where the old one came from


def test_the_dead_mans_switch_releases_the_process_when_nobody_undoes(target: LabTarget) -> None:
    host = "cp1"
    pid = target.pid("kube-apiserver", host)
    assert pid is not None
    before = cgroup_of(pid)
    started = time.monotonic()
    injection, _ = injected(target, {"host": host, "headroom": "1Gi", "deadman": 5}, duration=2)
    u = injection.undo[0].params
    assert cgroup_of(pid) == u["cgroup"]
    eventually(lambda: cgroup_of(pid) == before, 30, "the switch moved the process back")
    assert time.monotonic() - started >= 7  # not before duration + deadman
    eventually(lambda: not (ROOT / u["cgroup"].lstrip("/")).exists(), 10, "the switch removed the cgroup")
    apply_undo(target, injection.undo[0])  # recover afterwards: nothing left, nothing fails
    assert json.dumps(u)  # the undo is plain data, as written to the run directory
