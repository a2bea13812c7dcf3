"""The `webhook-outage` server on a cluster where chaoslab cannot start a process next to the apiservers (a
kubeconfig target): a pod and a Service, created through the API, with the same consent as other helper
pods (`spec.target.helperPod`, whose `namespace` they go in and whose `pythonImage` runs the server).

What is created for one injection (every name `chaoslab-webhook-<tag>`, labelled
`chaoslab.io/webhook-outage=<tag>`), in this order:

- a ConfigMap holding the server's program: `chaoslab/faults/webhook_server.py` itself, which needs only
  Python's standard library;
- a Secret (`kubernetes.io/tls`) with the serving certificate made for this injection, for the DNS name
  the apiserver checks, `<service>.<namespace>.svc`;
- the Pod: `python /chaoslab/webhook_server.py --mode … --port 8443` as an unprivileged user with a read-only
  root, no service-account token, ending by itself soon after the fault's dead-man's deadline (`--until`
  and `activeDeadlineSeconds`);
- the Service (port 8443 to the pod's 8443), which the configuration's `clientConfig.service` names.

Mode `unreachable` creates the Service alone: nothing answers behind it (the apiserver's call is refused
or finds no endpoint). The undo deletes the four, configuration first (`webhook_outage.remove_webhook`);
what is left after it is named.

    >>> sorted(o["kind"] for o in objects("w0-1a2b3c4d", "chaoslab", "python:3.12-alpine", "deny", 15.0,
    ...                                    1767225600, 90, b"CERT", b"KEY"))
    ['ConfigMap', 'Pod', 'Secret', 'Service']
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import InjectionError, TargetError
from chaoslab.faults import webhook_server
from chaoslab.targets.helperpod import create_pod, waiting_reason

PORT = 8443
"""The server's port in the pod, and the Service's."""
PROGRAM = "webhook_server.py"
LABEL = "chaoslab.io/webhook-outage"
USER = 65534
"""nobody: the server binds an unprivileged port and reads two mounted files."""


def name(tag: str) -> str:
    return f"chaoslab-webhook-{tag}"


def dns_name(tag: str, namespace: str) -> str:
    """What the apiserver checks the serving certificate against when it calls a webhook Service."""
    return f"{name(tag)}.{namespace}.svc"


def service_reference(tag: str, namespace: str, mode: str) -> dict[str, Any]:
    """The configuration's `clientConfig.service`."""
    return {"namespace": namespace, "name": name(tag), "path": f"/{mode}", "port": PORT}


def objects(tag: str, namespace: str, image: str, mode: str, hang: float, until: int, deadline: int,
            cert: bytes, key: bytes) -> list[dict[str, Any]]:
    """The manifests to create, in order (the Service alone in mode `unreachable`)."""
    meta = {"name": name(tag), "namespace": namespace, "labels": {LABEL: tag}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta,
               "spec": {"selector": {LABEL: tag}, "ports": [{"name": "https", "port": PORT, "targetPort": PORT}]}}
    if mode == "unreachable":
        return [service]
    program = Path(webhook_server.__file__).read_text()
    argv = ["python", f"/chaoslab/{PROGRAM}", "--mode", mode, "--hang", f"{hang:g}", "--address", "0.0.0.0",
            "--port", str(PORT), "--cert", "/tls/tls.crt", "--key", "/tls/tls.key", "--until", str(until)]
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {
            "restartPolicy": "Never",
            # The server exits at `until` by itself; the kubelet ends the pod anyway a little later.
            "activeDeadlineSeconds": deadline + 30,
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": USER, "runAsGroup": USER,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "webhook", "image": image, "command": argv,
                "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
                "ports": [{"containerPort": PORT, "name": "https"}],
                "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 1},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "program", "mountPath": "/chaoslab", "readOnly": True},
                                 {"name": "tls", "mountPath": "/tls", "readOnly": True}],
            }],
            "volumes": [{"name": "program", "configMap": {"name": name(tag)}},
                        {"name": "tls", "secret": {"secretName": name(tag)}}],
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {PROGRAM: program}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "kubernetes.io/tls",
         "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}},
        pod, service,
    ]


_PLURAL = {"ConfigMap": "configmaps", "Secret": "secrets", "Pod": "pods", "Service": "services"}


def path(kind: str, tag: str, namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/{_PLURAL[kind]}/{name(tag)}"


def create(api: KubeApi, manifests: Sequence[Mapping[str, Any]]) -> None:
    for m in manifests:
        ns = m["metadata"]["namespace"]
        try:
            if m["kind"] == "Pod":
                create_pod(api, m)
            else:
                api.create(f"/api/v1/namespaces/{ns}/{_PLURAL[m['kind']]}", m)
        except TargetError as exc:
            raise InjectionError(f"webhook-outage: could not create {m['kind']} {ns}/{m['metadata']['name']} "
                                 f"({exc}); the kubeconfig needs create on configmaps, secrets, pods and "
                                 f"services in {ns} (spec.target.helperPod.namespace)") from exc


def await_ready(api: KubeApi, tag: str, namespace: str, timeout: float, image: str, *,
                sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> float:
    """Seconds until the server's pod is Ready (its port accepts connections); `InjectionError` when it ends
    or `timeout` passes first, with its phase and waiting reason."""
    started = clock()
    while True:
        pod = api.get(path("Pod", tag, namespace))
        status = pod.get("status", {})
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
            return round(clock() - started, 3)
        phase = status.get("phase", "Pending")
        if phase in ("Succeeded", "Failed") or clock() - started > timeout:
            raise InjectionError(f"webhook-outage: the server pod {namespace}/{name(tag)} is not Ready "
                                 f"({'ended: ' if phase in ('Succeeded', 'Failed') else ''}phase {phase}{waiting_reason(pod)}) "
                                 f"after {clock() - started:.0f} s; can nodes pull {image} and run it as an "
                                 f"unprivileged user? (spec.target.helperPod.pythonImage)")
        sleep(0.5)


def delete(api: KubeApi, tag: str, namespace: str) -> list[str]:
    """Delete the four objects (gone already is fine); what still exists afterwards, besides a pod that is
    terminating (its server stops on TERM and serves nothing once the configuration is gone)."""
    for kind in ("Pod", "Service", "Secret", "ConfigMap"):
        api.delete(path(kind, tag, namespace))
    left = []
    for kind in ("Service", "Secret", "ConfigMap"):
        try:
            if api.request("GET", path(kind, tag, namespace)).status_code != 404:
                left.append(f"{kind.lower()} {namespace}/{name(tag)}")
        except (ApiError, TargetError):
            left.append(f"{kind.lower()} {namespace}/{name(tag)} (could not check)")
    return left
