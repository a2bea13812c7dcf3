"""webhook-outage through a kubeconfig target with helper pods: the server as a pod behind a Service.

The lab's nodes are simulated: the pod is scheduled and reported Running and Ready at once, and runs
nothing. The test plays the container runtime, the readiness probe and kube-proxy, nothing more: it runs the
pod's own command (its program from the ConfigMap, its certificate and key from the Secret: the files of the
pod's two mounts, the paths rewritten to where the test wrote them) in the lab network's switch namespace,
on the Service's ClusterIP, which every lab host routes there, and the fault's wait for a Ready pod returns
only once that server accepts connections (as the pod's tcpSocket readiness probe would have it). The rest
is real: the apiservers resolve the Service, check the certificate against `<service>.<namespace>.svc`, call
the webhook and refuse the write; the undo, and the dead-man's switch's heal, delete the configuration, the
pod, the Service, the Secret and the ConfigMap."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from informers import ensure_resolving
from waiting import eventually

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.faults import build, webhook_pod
from chaoslab.faults.base import Injection, apply_undo
from chaoslab.faults.netrules import cancel_dead_mans_switch
from chaoslab.faults.webhook_outage import (
    TEST_NAMESPACE,
    WebhookOutage,
    configuration_path,
    heal_from_file,
    switch_file,
)
from chaoslab.lab.config import LabLayout
from chaoslab.lab.network import BRIDGE
from chaoslab.targets.helperpod import HelperPodSettings
from chaoslab.targets.kubeconfig import KubeconfigTarget, current_context

PODS = "chaoslab-webhook-pods"
CM = "chaoslab-webhook-pod-itest"


class Node:
    """The container runtime and kube-proxy for one server pod: its command, run in the switch namespace on
    the Service's ClusterIP (routed there from every lab host)."""

    def __init__(self, lab: LabLayout, api: KubeApi, tag: str, workdir: Path) -> None:
        self.lab, self.api, self.tag, self.workdir = lab, api, tag, workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.cluster_ip: str | None = None
        self.error: BaseException | None = None
        self.started = threading.Event()
        """Set once the server accepts connections on the ClusterIP, or `error` says why it never will."""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _get(self, kind: str) -> dict[str, Any] | None:
        resp = self.api.request("GET", webhook_pod.path(kind, self.tag, PODS))
        return resp.json() if resp.status_code == 200 else None

    def _run(self) -> None:
        try:
            pod = eventually(lambda: self._get("Pod"), 60, "the server pod")
            service = eventually(lambda: self._get("Service"), 60, "the server's Service")
            config, secret = self._get("ConfigMap"), self._get("Secret")
            assert config and secret
            (self.workdir / "chaoslab").mkdir()
            (self.workdir / "tls").mkdir()
            for name, text in config["data"].items():
                (self.workdir / "chaoslab" / name).write_text(text)
            for name, data in secret["data"].items():
                (self.workdir / "tls" / name).write_bytes(base64.b64decode(data))
            argv = [a.replace("/chaoslab/", f"{self.workdir}/chaoslab/").replace("/tls/", f"{self.workdir}/tls/")
                    for a in pod["spec"]["containers"][0]["command"]]
            assert argv[0] == "python"
            self.cluster_ip = service["spec"]["clusterIP"]
            subprocess.run(["ip", "-n", self.lab.switch_netns, "addr", "add", f"{self.cluster_ip}/32", "dev", BRIDGE],
                           check=True)
            for host in self.lab.hosts:
                subprocess.run(["ip", "-n", host.netns, "route", "add", f"{self.cluster_ip}/32", "via",
                                self.lab.service_address], check=True)
            # -I: the program alone, as in the pod's image (no chaoslab package to import).
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.lab.switch_netns, sys.executable, "-I",
                                          *argv[1:]])
            probe = ["ip", "netns", "exec", self.lab.switch_netns, sys.executable, "-c",
                     f"import socket; socket.create_connection(({self.cluster_ip!r}, {webhook_pod.PORT}), 1)"]
            eventually(lambda: subprocess.run(probe, check=False, capture_output=True).returncode == 0, 30,
                       "the server accepting connections")
        except BaseException as exc:  # noqa: BLE001 - reported by ready() and stop()
            self.error = exc
        finally:
            self.started.set()

    def ready(self) -> None:
        """The readiness probe the lab's kubelet does not run: wait for the server, or raise why it is not up."""
        assert self.started.wait(150), "the test's runtime never finished starting the server"
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.thread.join(90)
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.cluster_ip:
            subprocess.run(["ip", "-n", self.lab.switch_netns, "addr", "del", f"{self.cluster_ip}/32", "dev", BRIDGE],
                           check=False)
            for host in self.lab.hosts:
                subprocess.run(["ip", "-n", host.netns, "route", "del", f"{self.cluster_ip}/32"], check=False)
        if self.error is not None:
            raise self.error


@pytest.fixture
def target(lab: LabLayout, api: KubeApi) -> Iterator[KubeconfigTarget]:
    for ns in (PODS, TEST_NAMESPACE, "default"):
        if api.request("GET", f"/api/v1/namespaces/{ns}").status_code == 404:
            api.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    for ns in (TEST_NAMESPACE, "default"):
        if api.request("GET", f"/api/v1/namespaces/{ns}/configmaps/{CM}").status_code == 404:
            api.create(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": CM}, "data": {"seq": "0"}})
    ensure_resolving(lab, api)  # the apiservers find the server pod's Service (see informers.py)
    yield KubeconfigTarget(KubeApi.from_kubeconfig(lab.kubeconfig), context=current_context(lab.kubeconfig),
                           kubeconfig=lab.kubeconfig, helper=HelperPodSettings(namespace=PODS, start_timeout=60))


def update(api: KubeApi, ns: str, seq: int) -> tuple[int, str]:
    resp = api.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/{CM}", body={"data": {"seq": str(seq)}},
                       content_type="application/merge-patch+json", timeout=30)
    return resp.status_code, resp.text


def left(api: KubeApi, injection: Injection) -> list[str]:
    p = injection.undo[0].params
    out = [f"configuration {p['name']}"] if api.request(
        "GET", configuration_path(p["type"], p["name"])).status_code != 404 else []
    for kind in ("Service", "Secret", "ConfigMap"):
        if api.request("GET", webhook_pod.path(kind, p["tag"], PODS)).status_code != 404:
            out.append(kind)
    pod = api.request("GET", webhook_pod.path("Pod", p["tag"], PODS))
    if pod.status_code != 404 and not pod.json()["metadata"].get("deletionTimestamp"):
        out.append("Pod (not even terminating)")
    return out


@pytest.mark.parametrize("undo", ["revert", "dead-mans-switch"])
def test_the_server_pod_behind_its_service_refuses_matched_writes_and_is_undone(
        lab: LabLayout, api: KubeApi, target: KubeconfigTarget, tmp_path: Path, undo: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fault = build("webhook-outage", {"mode": "deny"}, duration=60)
    assert isinstance(fault, WebhookOutage)
    injection = fault.resolve(target, 0)
    params = injection.undo[0].params
    assert params["placement"] == "pod"
    node = Node(lab, api, params["tag"], tmp_path)
    pod_ready = webhook_pod.await_ready

    def ready_when_serving(*args: Any, **kwargs: Any) -> float:
        waited = pod_ready(*args, **kwargs)  # at once: the lab's kubelet reports every pod Ready
        node.ready()
        return waited

    monkeypatch.setattr(webhook_pod, "await_ready", ready_when_serving)
    try:
        fault.inject(target, injection)  # waits until every apiserver calls the webhook (a dry-run CREATE)
        config = api.get(configuration_path("validating", params["name"]))
        assert config["webhooks"][0]["clientConfig"]["service"] == {
            "namespace": PODS, "name": webhook_pod.name(params["tag"]), "path": "/deny", "port": 8443}
        for host in lab.apiserver_hosts:  # the wait asked through the kubeconfig's server only: each refuses
            status, body = update(KubeApi(lab.apiserver_host_url(host), api.session), TEST_NAMESPACE, 1)
            assert status == 403 and "denied the request: chaoslab webhook-outage" in body, (host.name, body)
        assert update(api, "default", 1)[0] == 200  # not matched
        if undo == "revert":
            apply_undo(target, injection.undo[0])
        else:  # what the switch runs once chaoslab is gone
            heal_from_file(Path(switch_file(params)))
        assert not left(api, injection), left(api, injection)
        for host in lab.apiserver_hosts:  # the undo, too, waited through that server only
            assert update(KubeApi(lab.apiserver_host_url(host), api.session), TEST_NAMESPACE, 2)[0] == 200, host.name
    finally:
        if left(api, injection):
            apply_undo(target, injection.undo[0])
        subprocess.run(cancel_dead_mans_switch(params["marker"]).argv, check=False)  # the heal leaves it armed
        node.stop()
