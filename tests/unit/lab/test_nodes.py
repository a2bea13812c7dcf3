"""Unit tests for chaoslab.lab.nodes: manifests, status bodies, the renewal schedule, pauses, pod work.

No apiserver: the simulator's I/O parts talk to a fake `KubeApi` that records calls.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import fakes
import pytest

from chaoslab.clients.kubeapi import ApiError
from chaoslab.errors import TargetError
from chaoslab.lab import nodes as sim

NOW = 1_795_443_400.25  # 2026-11-22T..., with a fraction to see the microseconds


def _pod(node: str | None = "lab-node-2", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-1", "namespace": "default", "uid": "0f3c9a2e-1111-2222-3333-444455556666"},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.19"},
                                                  {"name": "side", "image": "busybox"}]},
        "status": {"phase": "Pending", **status},
    }


def test_node_names_and_addresses_are_plain_and_unique_on_loopback() -> None:
    assert sim.node_names("lab-node-", 3) == ["lab-node-1", "lab-node-2", "lab-node-3"]
    addresses = [sim.node_address(i) for i in range(1, 5001)]
    assert len(set(addresses)) == 5000 and addresses[0] == "127.2.0.1"
    assert all(a.startswith("127.2.") and not a.endswith((".0", ".255")) for a in addresses)
    ips = {sim.pod_ip(n) for n in range(60_000)}
    assert len(ips) == 60_000 and all(ip.startswith("127.3.") for ip in ips)


def test_node_manifest_carries_the_labels_and_leaves_status_to_the_subresource() -> None:
    node = sim.node_manifest("lab-node-7")
    assert node["metadata"]["name"] == "lab-node-7" and "status" not in node
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "lab-node-7"
    assert (labels["kubernetes.io/os"], labels["kubernetes.io/arch"]) == ("linux", "amd64")
    assert labels["chaoslab.io/simulated"] == "true"


def test_node_status_is_ready_with_capacity_addresses_and_kubelet_version() -> None:
    status = sim.node_status("lab-node-7", 7, NOW, NOW - 100)["status"]
    assert status["capacity"] == status["allocatable"] == {
        "cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    conditions = {c["type"]: c for c in status["conditions"]}
    assert {t: c["status"] for t, c in conditions.items()} == {
        "Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"}
    assert conditions["Ready"]["reason"] == "KubeletReady"
    assert conditions["Ready"]["lastHeartbeatTime"] == sim.rfc3339(NOW)
    assert conditions["Ready"]["lastTransitionTime"] == sim.rfc3339(NOW - 100)
    assert status["addresses"] == [{"type": "InternalIP", "address": "127.2.0.7"},
                                   {"type": "Hostname", "address": "lab-node-7"}]
    assert status["nodeInfo"]["kubeletVersion"] == "v1.20.2"
    assert status["nodeInfo"]["bootID"] == sim.node_status("lab-node-7", 7, NOW + 60, NOW)["status"]["nodeInfo"]["bootID"]


def test_lease_body_has_microsecond_renew_time_and_the_node_as_owner() -> None:
    lease = sim.lease_body("lab-node-1", 40, NOW, node_uid="u-1")
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "lab-node-1",
                                                     "uid": "u-1"}]
    spec = lease["spec"]
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"]) == ("lab-node-1", 40)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.250000Z", spec["renewTime"])
    assert "ownerReferences" not in sim.lease_body("lab-node-1", 40, NOW)["metadata"]


def test_running_pod_status_reports_every_container_started_and_ready() -> None:
    status = sim.running_pod_status(_pod(), "127.2.0.2", "127.3.0.9", NOW)["status"]
    assert (status["phase"], status["hostIP"], status["podIP"]) == ("Running", "127.2.0.2", "127.3.0.9")
    assert status["podIPs"] == [{"ip": "127.3.0.9"}] and status["startTime"] == sim.rfc3339(NOW)
    assert {c["type"]: c["status"] for c in status["conditions"]} == dict.fromkeys(
        ("Initialized", "ContainersReady", "Ready", "PodScheduled"), "True")
    app, side = status["containerStatuses"]
    assert (app["name"], app["image"], side["name"]) == ("app", "nginx:1.19", "side")
    assert app["ready"] and app["started"] and app["restartCount"] == 0
    assert app["containerID"].startswith("chaoslab://0f3c9a2e") and app["containerID"] != side["containerID"]
    assert app["state"] == {"running": {"startedAt": sim.rfc3339(NOW)}}
    assert "initContainerStatuses" not in status


def test_running_pod_status_keeps_what_the_pod_already_has() -> None:
    before = sim.running_pod_status(_pod(), "127.2.0.2", "127.3.0.9", NOW)["status"]
    again = sim.running_pod_status(_pod(**before), "127.2.0.2", "127.3.0.77", NOW + 500)["status"]
    assert again == before


def test_running_pod_status_completes_init_containers() -> None:
    pod = _pod()
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    (init,) = sim.running_pod_status(pod, "h", "p", NOW)["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 0 and init["ready"] is False


def test_pod_action_runs_pending_and_unready_pods_and_deletes_terminating_ones() -> None:
    running = sim.running_pod_status(_pod(), "h", "p", NOW)["status"]
    assert sim.pod_action(_pod()) == "run"
    assert sim.pod_action(_pod(**running)) is None
    unready = _pod(**running)
    unready["status"]["conditions"][1] = {"type": "Ready", "status": "False"}
    assert sim.pod_action(unready) == "run"
    assert sim.pod_action(_pod(phase="Succeeded")) is None
    terminating = _pod(**running)
    terminating["metadata"]["deletionTimestamp"] = "2026-11-23T14:00:00Z"
    assert sim.pod_action(terminating) == "delete"


def test_renewals_are_spread_evenly_over_the_interval() -> None:
    offsets = sim.spread(500, 10.0)
    assert offsets[0] == 0.0 and offsets[-1] < 10.0
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.02}
    assert sim.spread(0, 10.0) == []


def test_next_due_keeps_the_phase_and_skips_slots_missed_while_stalled() -> None:
    assert sim.next_due(100.0, 10.0, 100.3) == 110.0
    assert sim.next_due(100.0, 10.0, 99.0) == 110.0
    assert sim.next_due(100.0, 10.0, 135.0) == 140.0  # stalled 35 s: slots 110, 120, 130 are gone


def test_paused_nodes_are_files_named_like_our_nodes(tmp_path: Path) -> None:
    names = {"lab-node-1", "lab-node-2"}
    assert sim.read_paused(tmp_path / "absent", names) == frozenset()
    (tmp_path / "lab-node-2").touch()
    (tmp_path / "lab-node-22").touch()
    (tmp_path / "other").touch()
    assert sim.read_paused(tmp_path, names) == {"lab-node-2"}
    assert sim.paused_nodes(["lab-node-1", "lab-node-1.tmp"], names) == {"lab-node-1"}


def test_summarize_sorts_naturally_and_counts_the_rest() -> None:
    names = [f"n{i}" for i in range(12, 0, -1)]
    assert sim.summarize(names, limit=3) == "n1, n2, n3 and 9 more"


def test_parse_args_builds_the_config() -> None:
    kubeconfig, config = sim.parse_args(["--kubeconfig", "k", "--count", "5", "--paused-dir", "/p",
                                         "--lease-seconds", "20", "--stats-file", "s.json"])
    assert kubeconfig == Path("k")
    assert (config.count, config.prefix, config.lease_seconds, config.status_seconds) == (5, "lab-node-", 20, 60.0)
    assert (config.paused_dir, config.stats_file) == (Path("/p"), Path("s.json"))


# ---- the I/O parts, against a fake apiserver -------------------------------------------------------
class FakeApi(fakes.FakeApi):
    server = "https://fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.nodes: set[str] = set()
        self.lock = threading.Lock()

    def _log(self, verb: str, path: str, body: Any) -> None:
        with self.lock:
            self.calls.append((verb, path, body))

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._log("create", path, body)
        name = body["metadata"]["name"]
        if path == "/api/v1/nodes" and name in self.nodes:
            raise ApiError("POST", path, 409, "AlreadyExists", {"message": "exists"})
        self.nodes.add(name)
        return {"metadata": {"name": name, "uid": f"uid-{name}"}}

    def patch(self, path: str, body: Any, *, patch_type: str = "merge") -> dict[str, Any]:
        self._log("patch", path, body)
        if path.startswith(sim.LEASES):
            raise ApiError("PATCH", path, 404, "NotFound", {"message": "no lease"})
        return {"metadata": {"name": path.split("/")[4], "uid": "uid-adopted"}}

    def delete(self, path: str, body: Any = None, **params: Any) -> dict[str, Any] | None:
        self._log("delete", path, body)
        return {}

    def paths(self, verb: str) -> list[str]:
        with self.lock:
            return [p for v, p, _ in self.calls if v == verb]


def _wait(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def fake(tmp_path: Path) -> tuple[sim.Simulator, FakeApi]:
    api = FakeApi()
    config = sim.NodeSimConfig(count=2, paused_dir=tmp_path, heartbeat_workers=2, pod_workers=2)
    return sim.Simulator(api, config), api  # type: ignore[arg-type]


def test_register_creates_or_adopts_then_posts_status_and_lease(fake: tuple[sim.Simulator, FakeApi]) -> None:
    simulator, api = fake
    api.nodes.add("lab-node-2")  # left by an earlier run
    simulator.register("lab-node-1")
    simulator.register("lab-node-2")
    assert simulator.registered == {"lab-node-1": "uid-lab-node-1", "lab-node-2": "uid-adopted"}
    assert "/api/v1/nodes/lab-node-2" in api.paths("patch")  # labels patched onto the adopted node
    assert {"/api/v1/nodes/lab-node-1/status", "/api/v1/nodes/lab-node-2/status"} <= set(api.paths("patch"))
    leases = [b for v, p, b in api.calls if v == "create" and p == sim.LEASES]
    assert [lease["metadata"]["ownerReferences"][0]["uid"] for lease in leases] == ["uid-lab-node-1", "uid-adopted"]


def test_a_paused_node_is_registered_but_silent_and_reports_at_once_when_resumed(
        fake: tuple[sim.Simulator, FakeApi]) -> None:
    simulator, api = fake
    simulator.set_paused(frozenset({"lab-node-1"}))
    simulator.register("lab-node-1")
    assert api.paths("patch") == [] and api.paths("create") == ["/api/v1/nodes"]
    before = simulator.ready_since["lab-node-1"]
    simulator.set_paused(frozenset())
    _wait(lambda: "/api/v1/nodes/lab-node-1/status" in api.paths("patch") and sim.LEASES in api.paths("create"))
    assert simulator.ready_since["lab-node-1"] >= before


def test_bound_pods_go_running_and_terminating_pods_are_deleted_with_a_uid_precondition(
        fake: tuple[sim.Simulator, FakeApi]) -> None:
    simulator, api = fake
    simulator._track(_pod(node=None))  # not bound: not ours
    simulator._track(_pod(node="elsewhere"))
    assert simulator.pods == {}
    simulator._track(_pod())
    _wait(lambda: simulator.counters["pods_running"] == 1)
    ((_, path, body),) = [c for c in api.calls if c[0] == "patch"]
    assert path == "/api/v1/namespaces/default/pods/web-1/status"
    assert body["status"]["hostIP"] == "127.2.0.2" and body["status"]["podIP"] == "127.3.0.1"
    terminating = _pod()
    terminating["metadata"]["deletionTimestamp"] = "2026-11-23T14:00:00Z"
    simulator._track(terminating)
    _wait(lambda: api.paths("delete") == ["/api/v1/namespaces/default/pods/web-1"])
    options = next(b for v, _, b in api.calls if v == "delete")
    assert options["gracePeriodSeconds"] == 0 and options["preconditions"] == {"uid": _pod()["metadata"]["uid"]}
    simulator._track(terminating, gone=True)
    assert simulator.pods == {} and simulator.pod_ips == {}


def test_pods_of_a_paused_node_wait_until_it_resumes(fake: tuple[sim.Simulator, FakeApi]) -> None:
    simulator, api = fake
    simulator.set_paused(frozenset({"lab-node-2"}))
    simulator._track(_pod())
    time.sleep(0.1)
    assert api.calls == []
    simulator.set_paused(frozenset())
    _wait(lambda: simulator.counters["pods_running"] == 1)


def test_stats_file_holds_the_counters(fake: tuple[sim.Simulator, FakeApi], tmp_path: Path) -> None:
    simulator, _ = fake
    simulator.config = sim.NodeSimConfig(count=2, paused_dir=tmp_path, stats_file=tmp_path / "stats.json")
    simulator.renew("lab-node-1", due=time.monotonic() - 0.5)
    simulator.write_stats()
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["nodes"] == 2 and stats["lease_renewals"] == 1 and stats["worst_renewal_lateness_s"] >= 0.5
    assert {"pods_running", "cpu_seconds", "started_wall"} <= set(stats)


def test_a_failed_status_patch_is_retried_without_news_from_the_watch(
        fake: tuple[sim.Simulator, FakeApi], monkeypatch: pytest.MonkeyPatch) -> None:
    simulator, api = fake
    real_patch, failures = api.patch, [1]

    def flaky(path: str, body: Any, *, patch_type: str = "merge") -> dict[str, Any]:
        if failures:
            failures.pop()
            raise TargetError("PATCH: no answer")
        return real_patch(path, body, patch_type=patch_type)

    monkeypatch.setattr(api, "patch", flaky)
    simulator._track(_pod())
    _wait(lambda: simulator.counters["failures"] == 1 and bool(simulator.retry))
    simulator.retry = dict.fromkeys(simulator.retry, 0.0)  # due now
    simulator._retry_due()
    _wait(lambda: simulator.counters["pods_running"] == 1)


def test_a_pod_already_deleting_is_not_deleted_twice(fake: tuple[sim.Simulator, FakeApi]) -> None:
    simulator, api = fake
    terminating = _pod(phase="Running")
    terminating["metadata"]["deletionTimestamp"] = "2026-11-23T14:00:00Z"
    simulator.deleting.add(terminating["metadata"]["uid"])  # as if our DELETE were in flight
    simulator._track(terminating)
    time.sleep(0.1)
    assert api.paths("delete") == []


def test_adopted_pods_keep_their_ips_and_new_pods_get_other_ones(fake: tuple[sim.Simulator, FakeApi]) -> None:
    simulator, _ = fake
    adopted = _pod(**sim.running_pod_status(_pod(), "127.2.0.2", sim.pod_ip(0), NOW)["status"])
    simulator._track(adopted)  # Running and Ready: nothing to do, but its IP is taken
    assert simulator._ip_for("new-uid") == sim.pod_ip(1)
    assert simulator.counters["pods_running"] == 0
