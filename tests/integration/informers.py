"""Whether each lab apiserver's own Service informer is current, and a restart for one that is not.

An apiserver resolves a webhook's Service through an informer of its own (a watch on its own watch
cache). After etcd loses its leader, a Kubernetes 1.20 apiserver can see no Service created after that
for minutes (240 s and more; how it gets stuck inside the apiserver is not pinned down):
seen on the lab after test_partition's host cut, on the cut host and on others (every later
webhook call through that apiserver fails `service "…" not found`). A test that needs its apiservers to
resolve a new Service checks them first and restarts, with a warning, the ones that do not."""

from __future__ import annotations

import time
import uuid
import warnings

from waiting import eventually

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.lab.config import Host, LabLayout
from chaoslab.lab.status import collect
from chaoslab.targets.lab import LabTarget

NAMESPACE = "chaoslab-informer-check"
LABEL = "chaoslab.io/informer-check"
WEBHOOK = "informer-check.chaoslab.io"
CONFIG = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/chaoslab-informer-check"


def _configuration(service: str) -> dict[str, object]:
    """A webhook on ConfigMap CREATE in the check's namespace, served by a Service with nothing behind it:
    an apiserver that resolves the Service fails the call on the connection, one that does not says
    `not found`."""
    return {"metadata": {"name": CONFIG.rsplit("/", 1)[1]}, "webhooks": [{
        "name": WEBHOOK, "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
        "timeoutSeconds": 1, "namespaceSelector": {"matchLabels": {LABEL: "yes"}},
        "clientConfig": {"service": {"namespace": NAMESPACE, "name": service, "port": 8443}},
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                   "resources": ["configmaps"]}]}]}


def unresolving(lab: LabLayout, api: KubeApi, timeout: float) -> list[Host]:
    """The apiservers that have not resolved a Service created now after `timeout` s (a current one: within
    milliseconds)."""
    if api.request("GET", f"/api/v1/namespaces/{NAMESPACE}").status_code == 404:
        api.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE, "labels": {LABEL: "yes"}}})
    service = f"check-{uuid.uuid4().hex[:8]}"
    api.create(f"/api/v1/namespaces/{NAMESPACE}/services",
               {"metadata": {"name": service}, "spec": {"ports": [{"port": 8443}]}})
    api.request("DELETE", CONFIG)
    api.create(CONFIG.rsplit("/", 1)[0], _configuration(service))
    pending = {h.name: h for h in lab.apiserver_hosts}
    deadline = time.monotonic() + timeout
    try:
        while pending and time.monotonic() < deadline:
            for name, host in list(pending.items()):
                resp = KubeApi(lab.apiserver_host_url(host), api.session).request(
                    "POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps?dryRun=All",
                    body={"metadata": {"name": "probe"}}, timeout=5)
                message = str(resp.json().get("message", ""))  # 201: the configuration not seen yet
                if WEBHOOK in message and f'service "{service}" not found' not in message:
                    del pending[name]
            time.sleep(0.2)
    finally:
        api.request("DELETE", CONFIG)
        api.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/services/{service}")
    return list(pending.values())


def ensure_resolving(lab: LabLayout, api: KubeApi) -> None:
    """Every apiserver resolves a new Service: the stale ones (`unresolving` after 15 s) are restarted by
    the lab's supervisor, with a warning naming them, and must resolve after."""
    stale = unresolving(lab, api, 15)
    if not stale:
        return
    warnings.warn(f"apiserver(s) {[h.name for h in stale]} did not see a new Service within 15 s (a stale "
                  "Service informer an earlier test left); restarted", stacklevel=2)
    target = LabTarget(lab)
    for host in stale:
        pid = target.signal("kube-apiserver", host.name, "KILL")
        eventually(lambda: target.pid("kube-apiserver", host.name) not in (None, pid), 30,  # noqa: B023
                   f"kube-apiserver on {host.name} restarted")
    eventually(lambda: all(collect(lab).apiservers[h.name] for h in stale), 90, "restarted apiservers ready")
    assert not (left := unresolving(lab, api, 30)), f"still not resolving Services after a restart: {left}"
