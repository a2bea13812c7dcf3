"""etcd endpoints and client TLS discovered on kubeadm clusters, from the kube-apiserver static pod's flags.

kubeadm runs kube-apiserver as a static pod whose mirror pod (kube-system, label
`component=kube-apiserver`) carries the full command line, including how the apiserver itself reaches etcd:

    --etcd-servers=https://127.0.0.1:2379
    --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt
    --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt
    --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key

A stacked control plane names its local member by loopback; each loopback URL is turned into the pod's
host address (`status.hostIP`: static pods use the host network), one endpoint per control-plane node.

The three files are paths on the control-plane host, not on chaoslab's machine. The `ssh` target can fetch
them (`fetch_tls`: `cat` over ssh, with sudo when the host has it) into a private directory; a `kubeconfig`
target can use them only when chaoslab runs on that host, or from copies the user names in
spec.target.etcd.ca/cert/key (`KubeconfigTarget.load` says which file is missing and where it lives).

Called by `KubeconfigTarget.load` and `SshTarget` (`etcd: {discover: kubeadm}`); pure apart from `discover`, which reads
one list of pods, and `fetch_tls`, which runs `cat` on one host.

    >>> pod = {"spec": {"containers": [{"name": "kube-apiserver", "command": ["kube-apiserver",
    ...        "--etcd-servers=https://127.0.0.1:2379", "--etcd-cafile=/pki/ca.crt",
    ...        "--etcd-certfile=/pki/c.crt", "--etcd-keyfile=/pki/c.key"]}]}, "status": {"hostIP": "10.0.0.11"}}
    >>> etcd_flags([pod]).endpoints
    ('https://10.0.0.11:2379',)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from chaoslab.errors import TargetError

__all__ = ["EtcdFlags", "apiserver_flags", "discover", "etcd_flags", "fetch_tls"]

FLAGS = {"endpoints": "--etcd-servers", "ca": "--etcd-cafile", "cert": "--etcd-certfile", "key": "--etcd-keyfile"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SELECTOR = "component=kube-apiserver"


@dataclass(frozen=True)
class EtcdFlags:
    """How the apiservers reach etcd, as their flags say."""

    endpoints: tuple[str, ...]
    """Client URLs, loopback replaced by each apiserver's host address."""
    ca: str
    """Paths on the control-plane host (not on chaoslab's machine)."""
    cert: str
    key: str
    nodes: tuple[str, ...] = ()
    """The nodes whose apiserver pods were read."""


def apiserver_flags(pod: Mapping[str, Any]) -> dict[str, str]:
    """`--flag` → value of the kube-apiserver container's command and args (`--flag=value` or
    `--flag value`; a bare `--flag` is "true")."""
    containers = pod.get("spec", {}).get("containers") or []
    chosen = next((c for c in containers if c.get("name") == "kube-apiserver"), containers[0] if containers else {})
    argv = [str(a) for a in (chosen.get("command") or []) + (chosen.get("args") or [])]
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            out[name] = value if eq or value else "true"
        i += 1
    return out


def _localise(url: str, host_ip: str | None) -> str:
    parts = urlsplit(url.strip())
    if parts.hostname in LOOPBACK and host_ip:
        host = f"[{host_ip}]" if ":" in host_ip else host_ip
        return urlunsplit(parts._replace(netloc=f"{host}:{parts.port or 2379}"))
    return url.strip().rstrip("/")


def etcd_flags(pods: Sequence[Mapping[str, Any]]) -> EtcdFlags:
    """The etcd endpoints and TLS files of kube-apiserver mirror pods; `TargetError` naming what is missing."""
    if not pods:
        raise TargetError("no kube-apiserver pod in kube-system (label component=kube-apiserver): not a kubeadm "
                          "control plane, or a managed one; give spec.target.etcd {endpoints, ca, cert, key}")
    endpoints: list[str] = []
    files: dict[str, set[str]] = {"ca": set(), "cert": set(), "key": set()}
    nodes = []
    for pod in pods:
        flags = apiserver_flags(pod)
        missing = [flag for flag in FLAGS.values() if not flags.get(flag)]
        name = pod.get("metadata", {}).get("name", "kube-apiserver")
        if missing:
            raise TargetError(f"pod kube-system/{name} has no {', '.join(missing)} flag(s): its etcd access is not "
                              f"discoverable; give spec.target.etcd {{endpoints, ca, cert, key}}")
        host_ip = pod.get("status", {}).get("hostIP")
        for url in flags[FLAGS["endpoints"]].split(","):
            local = _localise(url, host_ip)
            if urlsplit(local).hostname in LOOPBACK:
                raise TargetError(f"pod kube-system/{name} reaches etcd at {url} and has no status.hostIP to "
                                  f"turn that into an address chaoslab can reach; give spec.target.etcd.endpoints")
            if local not in endpoints:
                endpoints.append(local)
        for key, seen in files.items():
            seen.add(flags[FLAGS[key]])
        if pod.get("spec", {}).get("nodeName"):
            nodes.append(str(pod["spec"]["nodeName"]))
    differ = [FLAGS[k] for k, v in files.items() if len(v) > 1]
    if differ:
        raise TargetError(f"the apiservers disagree on {', '.join(differ)} ({files}); give spec.target.etcd "
                          f"ca, cert and key")
    (ca,), (cert,), (key,) = files["ca"], files["cert"], files["key"]
    return EtcdFlags(tuple(endpoints), ca, cert, key, nodes=tuple(nodes))


class _Api(Protocol):
    def get(self, path: str, **params: Any) -> dict[str, Any]: ...


def discover(api: _Api) -> EtcdFlags:
    """Read the kube-apiserver mirror pods and return their etcd flags (needs `list pods` in kube-system)."""
    pods = api.get("/api/v1/namespaces/kube-system/pods", labelSelector=SELECTOR)["items"]
    return etcd_flags(pods)


class _Host(Protocol):
    def run_on(self, host: str, argv: Sequence[str], *, check: bool = True) -> str: ...


def fetch_tls(target: _Host, host: str, flags: EtcdFlags, into: Path) -> dict[str, Path]:
    """Copy the CA, client certificate and key from `host` (`cat` through the ssh target, sudo as configured)
    into the private directory `into` (mode 0700, files 0600); return key → local path. The key's contents
    pass through memory only on their way to the file, and are never logged."""
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(into, 0o700)
    out = {}
    for key in ("ca", "cert", "key"):
        remote = getattr(flags, key)
        text = target.run_on(host, ("cat", "--", remote))
        if not text.strip():
            raise TargetError(f"{remote} on {host} is empty or unreadable; set sudo: true for the host")
        path = into / f"etcd-{key}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        out[key] = path
    return out
