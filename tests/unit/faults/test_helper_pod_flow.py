"""kill-process through a helper pod, against a fake API (pure logic: no real pod can run on the lab's
simulated nodes; the pod's program itself is run in a lab namespace by
tests/integration/test_helper_pod_scripts.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fakes
import pytest

from chaoslab.clients.kubeapi import ApiError
from chaoslab.errors import InjectionError, SpecError
from chaoslab.faults.base import apply_undo
from chaoslab.faults.kill_process import KillProcess, KillProcessParams
from chaoslab.plan.guard import capability_problems
from chaoslab.targets.helperpod import SERVICE_ACCOUNT_WAIT, HelperPods, HelperPodSettings, create_pod
from chaoslab.targets.kubeconfig import KubeconfigTarget

NODES = [{"metadata": {"name": "cp-1", "labels": {"kubernetes.io/hostname": "cp-1"}}},
         {"metadata": {"name": "cp-2", "labels": {"kubernetes.io/hostname": "cp-2"}}}]


@dataclass
class Response:
    status_code: int
    text: str = ""


class FakeApi(fakes.FakeApi):
    """Nodes, kube-system pods with `component=…`, a scheduler Lease, and helper pods whose log follows a
    script (`logs`: pod name → lines the pod has written by the nth read)."""

    server = "https://cp.example:6443"

    def __init__(self, logs: list[str], phase: str = "Running") -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs, self.phase, self.reads = logs, phase, 0
        self.deleted: list[str] = []

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path == "/version":
            return {"gitVersion": "v1.28.2"}
        if path == "/api/v1/nodes":
            return {"items": NODES}
        if path == "/api/v1/namespaces/kube-system/pods":
            return {"items": [{"spec": {"nodeName": "cp-1"}}, {"spec": {"nodeName": "cp-2"}}]}
        if path.endswith("/leases/kube-scheduler"):
            return {"spec": {"holderIdentity": "cp-1_0c8f2e"}}
        if path in self.pods:
            return {"status": {"phase": self.phase}}
        raise AssertionError(path)

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.pods[f"{path}/{body['metadata']['name']}"] = dict(body)
        return dict(body)

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        if path.endswith("/log"):
            self.reads += 1
            return Response(200, "".join(f"chaoslab: {x}\n" for x in self.logs[:self.reads]))
        return Response(200 if path in self.pods else 404)

    def delete(self, path: str, **kwargs: Any) -> None:
        self.deleted.append(path)
        self.pods.pop(path, None)


CHAOS = HelperPodSettings(namespace="chaos")


def target(api: FakeApi, helper: HelperPodSettings | None = CHAOS) -> KubeconfigTarget:
    t = KubeconfigTarget(api, context="staging", helper=helper)  # type: ignore[arg-type]
    t.helper_pods = lambda: HelperPods(api, t.helper, sleep=lambda s: None) if t.helper else None  # type: ignore[method-assign]
    return t


def events() -> tuple[list[tuple[str, dict[str, Any]]], Any]:
    out: list[tuple[str, dict[str, Any]]] = []
    return out, lambda kind, **detail: out.append((kind, detail))


def test_the_undo_names_the_pod_before_it_exists_and_recover_deletes_it() -> None:
    api = FakeApi([])
    t = target(api)
    fault = KillProcess(KillProcessParams("kube-scheduler", select="leader", signal="STOP"), duration=30)
    inj = fault.resolve(t, 0)
    assert inj.targets == ("kube-scheduler@cp-1",)
    [undo] = inj.undo
    assert undo.action == "delete-pod" and undo.params["namespace"] == "chaos"
    assert undo.params["node"] == "cp-1" and undo.params["name"].startswith("chaoslab-kill-0-0-")
    assert not api.pods, "resolve creates nothing"
    api.pods[f"/api/v1/namespaces/chaos/pods/{undo.params['name']}"] = {}
    apply_undo(t, undo)
    assert api.deleted == [f"/api/v1/namespaces/chaos/pods/{undo.params['name']}"] and not api.pods


def test_a_stop_through_the_pod_records_the_pid_and_its_state() -> None:
    api = FakeApi(["old-pid 4242", "signalled STOP 4242", "state T (stopped)"])
    t = target(api)
    fault = KillProcess(KillProcessParams("kube-scheduler", select="leader", signal="STOP"), duration=30)
    inj = fault.resolve(t, 0)
    seen, record = events()
    fault.inject(t, inj, record=record)
    [pod] = api.pods.values()
    assert pod["spec"]["nodeName"] == "cp-1" and pod["spec"]["hostPID"] is True
    assert "kill -s STOP" in pod["spec"]["containers"][0]["command"][2]
    assert [k for k, _ in seen] == ["helper-pod-created", "process-signalled", "process-state"]
    assert seen[1][1]["pid"] == 4242 and seen[1][1]["via"].startswith("pod chaos/chaoslab-kill-0-0-")
    assert seen[2][1]["state"] == "T (stopped)"


def test_a_kill_through_the_pod_is_confirmed_and_the_new_pid_recorded() -> None:
    api = FakeApi(["old-pid 100", "signalled KILL 100", "gone 100 after 0", "new-pid 177"])
    t = target(api)
    fault = KillProcess(KillProcessParams("kube-scheduler", select="leader", signal="KILL"), duration=5)
    seen, record = events()
    fault.inject(t, fault.resolve(t, 0), record=record)
    deadline = time.monotonic() + 5
    while "process-restarted" not in [k for k, _ in seen] and time.monotonic() < deadline:
        time.sleep(0.01)
    kinds = [k for k, _ in seen]
    assert kinds == ["helper-pod-created", "process-signalled", "process-gone", "process-restarted"], seen
    assert seen[2][1]["pid"] == 100 and seen[3][1] == {**seen[3][1], "pid": 177, "old_pid": 100}


def test_a_helper_that_finds_no_single_process_fails_the_injection() -> None:
    api = FakeApi(["error want one kube-scheduler process, found: none"])
    t = target(api)
    fault = KillProcess(KillProcessParams("kube-scheduler", select="leader"), duration=5)
    with pytest.raises(InjectionError, match="want one kube-scheduler process"):
        fault.inject(t, fault.resolve(t, 0))


def test_a_helper_pod_that_never_reports_fails_with_its_phase() -> None:
    api = FakeApi([], phase="Pending")
    clock = iter(range(0, 1000, 10))
    runner = HelperPods(api, HelperPodSettings(start_timeout=30), sleep=lambda s: None, clock=lambda: next(clock))
    api.pods["/api/v1/namespaces/chaoslab/pods/h"] = {}
    with pytest.raises(InjectionError, match="did not report within 30 s.*Pending.*image"):
        runner.wait_for("h", lambda lines: False, 30)
    api.phase = "Failed"
    with pytest.raises(InjectionError, match=r"ended \(Failed\) before it reported"):
        runner.wait_for("h", lambda lines: False, 30)


def test_without_helper_pods_node_level_faults_are_refused_and_with_them_only_node_failure_is() -> None:
    api = FakeApi([])

    @dataclass
    class F:
        kind: str
        where: str

    @dataclass
    class Exp:
        faults: tuple[F, ...] = (F("kill-process", "x.yaml:3"), F("partition", "x.yaml:5"),
                                 F("node-failure", "x.yaml:7"))
        steady_state: tuple[str, ...] = ()

    refused = capability_problems(Exp(), target(api, helper=None), [])  # type: ignore[arg-type]
    assert len(refused) == 3 and "spec.target.helperPod" in refused[0] and "spec.target.helperPod" in refused[1]
    allowed = capability_problems(Exp(), target(api), [])  # type: ignore[arg-type]
    assert len(allowed) == 1 and allowed[0].startswith("x.yaml:7") and "use an ssh target" in allowed[0]


def test_helper_pod_settings_are_checked() -> None:
    assert HelperPodSettings.from_params(None) is None
    assert HelperPodSettings.from_params(True) == HelperPodSettings()
    s = HelperPodSettings.from_params({"image": "registry.example/tools:1", "namespace": "ops"})
    assert s is not None and (s.image, s.namespace) == ("registry.example/tools:1", "ops")
    with pytest.raises(SpecError) as err:
        HelperPodSettings.from_params({"image": "a b; rm -rf /", "namespace": "Ops", "x": 1})
    assert len(err.value.problems) == 3


class NewNamespaceApi:
    """Refuses pods as ServiceAccount admission does until the namespace's `default` account exists (after
    `refusals` tries); `other` refuses with another 403 instead."""

    def __init__(self, refusals: int, other: bool = False) -> None:
        self.refusals, self.other, self.tries = refusals, other, 0

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.tries += 1
        if self.other:
            raise ApiError("POST", path, 403, "Forbidden", {"message": 'pods is forbidden: User '
                           '"system:serviceaccount:ci:chaoslab" cannot create resource "pods"'})
        if self.tries <= self.refusals:
            raise ApiError("POST", path, 403, "Forbidden", {"message": 'pods "p" is forbidden: error looking up '
                           'service account ns/default: serviceaccount "default" not found'})
        return dict(body)


def test_a_pod_in_a_namespace_made_seconds_ago_is_created_once_its_service_account_exists() -> None:
    now = [0.0]
    api = NewNamespaceApi(refusals=3)
    create_pod(api, {"metadata": {"namespace": "ns"}},  # type: ignore[arg-type]
               sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert api.tries == 4
    never = NewNamespaceApi(refusals=10**6)
    with pytest.raises(ApiError, match="serviceaccount"):
        create_pod(never, {"metadata": {"namespace": "ns"}},  # type: ignore[arg-type]
                   sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert never.tries <= SERVICE_ACCOUNT_WAIT / 0.25 + 2
    other = NewNamespaceApi(refusals=0, other=True)
    with pytest.raises(ApiError, match="cannot create"):
        create_pod(other, {"metadata": {"namespace": "ns"}})  # type: ignore[arg-type]
    assert other.tries == 1
