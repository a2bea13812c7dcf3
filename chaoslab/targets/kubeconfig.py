"""A real cluster reached through a kubeconfig context or a pod's service account: the `kubeconfig` target.

It talks to the API only. API-level faults (`drain-node`, `evict-pods`) and the API probes (lease,
apiserver, canary, kube-sequence, workloads) run through it; the etcd probes run when etcd endpoints and
client TLS are given (`etcd: {endpoints, ca, cert, key}`); node-level faults (kill a process, partition,
degrade the network, stop a node's heartbeat) need a way onto the hosts. With `helperPod: {image,
namespace}` set (opt-in: it creates privileged pods), `kill-process`, `partition` and `network-degrade` run
through short-lived privileged helper pods pinned to the nodes (`chaoslab.targets.helperpod`,
`chaoslab.faults.netpods`; hosts are the nodes, reached by their InternalIP); without it, and for
`node-failure`, the target refuses with what to use instead (`node_level_refusal`). On managed control planes (EKS,
GKE, AKS, `managed_provider`) there is no host to reach at all, and the refusal says so.

    >>> target = KubeconfigTarget.load(context="staging")                        # doctest: +SKIP
    >>> target = KubeconfigTarget.load(in_cluster=True)                          # doctest: +SKIP

Called by `chaoslab.targets.resolve_target`; never reads or writes secrets beyond handing the kubeconfig
to the client (reports and the run directory only ever see `describe()`: paths and names).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from etcd3 import etcdrpc

from chaoslab.clients.etcd import EtcdMember, RpcError, Tls
from chaoslab.clients.hosts import Command, Endpoint, Wrap
from chaoslab.clients.kubeapi import SERVICE_ACCOUNT_DIR, ApiError, KubeApi
from chaoslab.errors import SpecError, TargetError
from chaoslab.targets import CertificateLink, TargetBase, kubeadm, unknown_params
from chaoslab.targets.helperpod import HelperPods, HelperPodSettings, node_for_host

IN_CLUSTER = "in-cluster"
"""The context name shown for a pod's service-account config."""

#: Node labels that only managed control planes put on their nodes → provider.
MANAGED_LABELS = {"eks.amazonaws.com/nodegroup": "EKS", "eks.amazonaws.com/compute-type": "EKS",
                  "cloud.google.com/gke-nodepool": "GKE", "cloud.google.com/gke-os-distribution": "GKE",
                  "kubernetes.azure.com/cluster": "AKS", "kubernetes.azure.com/role": "AKS"}
#: gitVersion suffixes of managed apiservers: v1.27.4-eks-2d98532, v1.27.3-gke.100.
MANAGED_VERSIONS = ((re.compile(r"-eks-"), "EKS"), (re.compile(r"-gke\."), "GKE"))


HELPER_POD_FAULTS = ("kill-process", "partition", "network-degrade", "disk-latency")
"""Node-level faults the helper pod carries out (`node-failure` stops a kubelet: no pod can do that)."""


def managed_provider(git_version: str, node_labels: Sequence[Mapping[str, str]] = ()) -> str | None:
    """EKS, GKE or AKS when the server version or a node's labels say the control plane is managed.

        >>> managed_provider("v1.27.4-eks-2d98532")
        'EKS'
        >>> managed_provider("v1.28.1", [{"kubernetes.azure.com/cluster": "MC_rg"}])
        'AKS'
    """
    for pattern, provider in MANAGED_VERSIONS:
        if pattern.search(git_version):
            return provider
    for labels in node_labels:
        for key, provider in MANAGED_LABELS.items():
            if key in labels:
                return provider
    return None


@dataclass(frozen=True)
class EtcdAccess:
    """How chaoslab reaches etcd directly (for the etcd and writes probes, and `select: leader` of etcd)."""

    endpoints: tuple[str, ...]
    """Client URLs, one per member: `https://10.0.0.11:2379`."""
    tls: Tls
    """CA, client certificate and key files (never their contents: only paths are written anywhere)."""

    @classmethod
    def from_params(cls, raw: object) -> EtcdAccess | None:
        """From `spec.target.etcd` ({endpoints, ca, cert, key}); None when not given."""
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise SpecError(["spec.target.etcd: must be a mapping {endpoints, ca, cert, key}"])
        missing = [k for k in ("endpoints", "ca", "cert", "key") if not raw.get(k)]
        if missing:
            raise SpecError([(f"spec.target.etcd: missing {', '.join(missing)}; the etcd probes need every "
                             f"member's client URL and a client certificate the members trust")])
        endpoints = raw["endpoints"]
        endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        bad = [e for e in endpoints if urlsplit(str(e)).scheme not in ("https", "http") or not urlsplit(str(e)).port]
        if bad:
            raise SpecError([(f"spec.target.etcd.endpoints: {', '.join(map(str, bad))}: give each as "
                             f"https://HOST:PORT")])
        paths = {k: Path(str(raw[k])).expanduser() for k in ("ca", "cert", "key")}
        return cls(tuple(str(e) for e in endpoints), Tls(paths["ca"], paths["cert"], paths["key"]))

    def describe(self) -> dict[str, Any]:
        return {"endpoints": list(self.endpoints), "ca": str(self.tls.ca), "cert": str(self.tls.cert),
                "key": str(self.tls.key)}


def discovered_etcd(api: KubeApi, raw: Mapping[str, Any], exists: Any = Path.exists) -> EtcdAccess:
    """`etcd: {discover: kubeadm}`: endpoints and file paths from the kube-apiserver static pod's flags;
    `endpoints`, `ca`, `cert`, `key` given beside it win (e.g. local copies of the host's files). The files
    must exist where chaoslab runs: the flags name paths on the control-plane host."""
    if raw.get("discover") != "kubeadm":
        raise SpecError([f"spec.target.etcd.discover: {raw.get('discover')!r} is not kubeadm"])
    unknown = sorted(set(raw) - {"discover", "endpoints", "ca", "cert", "key"})
    if unknown:
        raise SpecError([f"spec.target.etcd: unknown field(s) {', '.join(unknown)}"])
    found = kubeadm.discover(api)
    params = {"endpoints": list(found.endpoints), "ca": found.ca, "cert": found.cert, "key": found.key,
              **{k: raw[k] for k in ("endpoints", "ca", "cert", "key") if raw.get(k)}}
    access = EtcdAccess.from_params(params)
    assert access is not None
    missing = [f"{k} {getattr(access.tls, k)}" for k in ("ca", "cert", "key") if not exists(getattr(access.tls, k))]
    if missing:
        where = ", ".join(found.nodes) or "the control-plane hosts"
        raise TargetError(f"etcd discovered from the kube-apiserver pod's flags ({', '.join(access.endpoints)}), "
                          f"but its client files are on {where}, not here: {'; '.join(missing)} not found. "
                          f"Copy them from a control-plane host and name the copies in spec.target.etcd.ca/cert/"
                          f"key (or run chaoslab on that host, or use an ssh target)")
    return access


def state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "chaoslab"


def environ_kubeconfig() -> Path | None:
    """$KUBECONFIG as it is now, when it names one file (the kubernetes client reads it once, when it is
    imported); None: the client's default."""
    value = os.environ.get("KUBECONFIG", "")
    return Path(value).expanduser() if value and os.pathsep not in value else None


class KubeconfigTarget(TargetBase):
    kind = "kubeconfig"
    cli_name = "context"
    PARAMS = ("context", "kubeconfig", "inCluster", "etcd", "helperPod")
    """A cluster through its API (see the module docstring)."""

    renewal_window = 2 * 2.0 + 1.0
    """client-go's default retry period is 2 s: two missed renewals and a second of slack."""

    def __init__(self, api: KubeApi, *, context: str, kubeconfig: Path | None = None, in_cluster: bool = False,
                 etcd: EtcdAccess | None = None, helper: HelperPodSettings | None = None) -> None:
        self._api = api
        self.helper = helper
        """Helper-pod settings when node-level faults may run through privileged pods (opt-in)."""
        self.context = context
        self.kubeconfig = kubeconfig
        self.in_cluster = in_cluster
        self.etcd = etcd
        self.server = api.server
        self.name = "in-cluster service account" if in_cluster else f"kubeconfig context {context!r}"
        self._provider: tuple[str | None] | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> KubeconfigTarget:
        unknown_params(cls.kind, params, cls.PARAMS)
        return cls.load(str(params["context"]) if params.get("context") else None,
                        str(params["kubeconfig"]) if params.get("kubeconfig") else None,
                        in_cluster=bool(params.get("inCluster")), etcd=params.get("etcd"),
                        helper_pod=params.get("helperPod"))

    @classmethod
    def load(cls, context: str | None = None, kubeconfig: Path | str | None = None, *, in_cluster: bool = False,
             etcd: object = None, helper_pod: object = None,
             service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeconfigTarget:
        """From a kubeconfig (`kubeconfig` path, else $KUBECONFIG, else ~/.kube/config; `context`, else its
        current context) or, `in_cluster`, from the pod's service account. `helper_pod`: spec.target.helperPod."""
        discover = isinstance(etcd, Mapping) and etcd.get("discover") is not None
        access = None if discover else EtcdAccess.from_params(etcd)
        helper = HelperPodSettings.from_params(helper_pod)
        if in_cluster:
            api = KubeApi.in_cluster(service_account_dir, timeout=5.0)
            name, path = IN_CLUSTER, None
        else:
            path = Path(kubeconfig).expanduser() if kubeconfig else environ_kubeconfig()
            name = context or current_context(path)
            api = KubeApi.from_kubeconfig(path, name, timeout=5.0)
        if discover:
            assert isinstance(etcd, Mapping)
            access = discovered_etcd(api, etcd)
        return cls(api, context=name, kubeconfig=path, in_cluster=in_cluster, etcd=access, helper=helper)

    # ---- what the guard rails ask ------------------------------------------------------------------
    def python(self, host: str) -> tuple[str, ...]:
        raise TargetError(f"{self.name}: no host to run chaoslab's Python on; node-level faults need the ssh "
                          f"target")

    @property
    def allow_names(self) -> dict[str, list[str]]:
        """What an allow-list may name to let chaoslab act on this cluster: its context and server host."""
        return {"contexts": [self.context], "hosts": [urlsplit(self.server).hostname or self.server]}

    def describe(self) -> dict[str, object]:
        """Enough to reach the same cluster again; names and paths only, never credentials."""
        return {"kind": "kubeconfig", "name": self.name, "context": self.context, "inCluster": self.in_cluster,
                "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None, "server": self.server,
                "etcd": self.etcd.describe() if self.etcd else None,
                "helperPod": self.helper.describe() if self.helper else None, "renewal_window": self.renewal_window}

    def provider(self) -> str | None:
        """EKS, GKE or AKS when the control plane is managed (asked once: /version, then node labels)."""
        if self._provider is None:
            version = str(self._api.get("/version").get("gitVersion", ""))
            labels: list[Mapping[str, str]] = []
            if managed_provider(version) is None:
                try:
                    nodes = self._api.get("/api/v1/nodes", limit=20)["items"]
                    labels = [n["metadata"].get("labels") or {} for n in nodes]
                except ApiError:
                    pass  # no right to list nodes: the version is all there is to go on
            self._provider = (managed_provider(version, labels),)
        return self._provider[0]

    def node_level_refusal(self, kind: str) -> str | None:
        """Why the node-level fault `kind` cannot run through this target, and what to do instead; None when
        it can (kill-process with helper pods enabled, on a control plane that is not managed)."""
        provider = self.provider()
        if provider:
            return (f"{kind} is a node-level control-plane fault, and {self.name} is a managed {provider} control "
                    f"plane: its hosts are run by {provider} and cannot be reached, so it is refused. "
                    f"API-level faults (drain-node, evict-pods) and the API probes still work")
        if kind in HELPER_POD_FAULTS and self.helper is not None:
            return None
        if kind in HELPER_POD_FAULTS:
            return (f"{kind} acts on the hosts themselves, and {self.name} only reaches the API; either allow "
                    f"privileged helper pods (spec.target.helperPod: {{image, namespace}}; `chaoslab run "
                    f"--dry-run` shows the pod) or use an ssh target (spec.target kind: ssh). API-level faults "
                    f"(drain-node, evict-pods) run here")
        return (f"{kind} acts on the hosts themselves, and {self.name} only reaches the API; use an ssh target "
                f"(spec.target kind: ssh) for self-managed control planes (helper pods run "
                f"{', '.join(HELPER_POD_FAULTS)} only). API-level faults (drain-node, evict-pods) run here")

    def helper_pods(self) -> HelperPods | None:
        """The helper-pod runner, when helper pods are allowed (`spec.target.helperPod`)."""
        return HelperPods(self._api, self.helper) if self.helper is not None else None

    def node_of(self, host: str) -> str:
        """The Node that `host` (a Lease holder's hostname, an etcd member name) is (`node_for_host`)."""
        return node_for_host(host, self._api.get("/api/v1/nodes")["items"])

    def etcd_refusal(self) -> str | None:
        if self.etcd is not None:
            return None
        return (f"{self.name} has no etcd access configured; give spec.target.etcd {{endpoints: [https://HOST:2379, "
                f"...], ca, cert, key}} (on kubeadm: /etc/kubernetes/pki/etcd/ca.crt and the apiserver's "
                f"apiserver-etcd-client.crt/.key), or drop the etcd probes and the etcd-quorum/etcd-leader "
                f"steady-state conditions (e.g. probes: [lease, apiserver, canary])")

    # ---- Target ---------------------------------------------------------------------------------------
    def api(self) -> KubeApi:
        return self._api

    def apiserver_endpoints(self) -> Mapping[str, str]:
        # Only the endpoint the kubeconfig names: the apiservers behind it may not be reachable one by one.
        return {"lb": self.server}

    def etcd_members(self, timeout: float = 1.0) -> dict[str, EtcdMember]:
        if self.etcd is None:
            raise TargetError(str(self.etcd_refusal()))
        names = self._member_names(timeout)
        out = {}
        for url in self.etcd.endpoints:
            parts = urlsplit(url)
            name = names.get(url.rstrip("/"), parts.hostname or url)
            out[name] = EtcdMember(name, parts.hostname or "", parts.port or 2379, self.etcd.tls, timeout)
        return out

    def _member_names(self, timeout: float) -> dict[str, str]:
        """Client URL → member name, from the first member that answers MemberList."""
        assert self.etcd is not None
        for url in self.etcd.endpoints:
            parts = urlsplit(url)
            member = EtcdMember("?", parts.hostname or "", parts.port or 2379, self.etcd.tls, timeout)
            try:
                resp = member.client.clusterstub.MemberList(etcdrpc.MemberListRequest(), timeout)
                return {u.rstrip("/"): m.name for m in resp.members for u in m.clientURLs}
            except RpcError:
                continue
            finally:
                member.close()
        return {}

    def hosts(self, component: str) -> list[str]:
        """etcd: the configured members; otherwise the nodes whose kube-system pods carry `component=NAME`
        (kubeadm's static pods), or none when they cannot be seen."""
        if component == "etcd" and self.etcd is not None:
            return list(self.etcd_members())
        try:
            pods = self._api.get("/api/v1/namespaces/kube-system/pods", labelSelector=f"component={component}")
        except ApiError:
            return []
        return sorted({p["spec"].get("nodeName") for p in pods["items"] if p["spec"].get("nodeName")})

    def _unreachable(self, what: str) -> TargetError:
        return TargetError(f"{self.name} cannot {what}: it only reaches the API, not the hosts; use an ssh "
                           f"target for node-level faults")

    def pid(self, component: str, host: str) -> int | None:
        raise self._unreachable(f"see the process of {component} on {host}")

    def signal(self, component: str, host: str, signal: str) -> int:
        raise self._unreachable(f"signal {component} on {host}")

    def hold(self, component: str, host: str, held: bool) -> None:
        raise self._unreachable(f"hold {component} on {host} down")

    def component_log(self, component: str, host: str) -> str:
        raise TargetError(f"{self.name} cannot read the log of {component} on {host}: not supported by a "
                          f"kubeconfig target yet (the run has no ground truth from component logs)")

    def endpoint(self, host: str) -> Endpoint:
        """With helper pods: the host's node by its InternalIP (IPv4; what its peers reach it on), and
        spec.target.helperPod.interface as the device for delays."""
        if self.helper is None:
            raise self._unreachable(f"put packet filters on {host}")
        nodes = self._api.get("/api/v1/nodes")["items"]
        node = node_for_host(host, nodes)
        status = next(n.get("status") or {} for n in nodes if n["metadata"]["name"] == node)
        addresses = [a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"]
        for address in addresses:
            try:
                return Endpoint(host, address, device=self.helper.interface)
            except ValueError:
                continue  # an IPv6 InternalIP: iptables rules are IPv4
        raise TargetError(f"node {node} ({host}) has no IPv4 InternalIP ({addresses or 'none'}); partitions need "
                          f"the address its peers reach it on")

    def clients(self, host: str) -> Endpoint:
        raise TargetError(f"{self.name}: where clients reach {host} from is not known through the API, so "
                          f"`clients: true` is not supported here; use an ssh target with clientsAddress")

    def host_wrap(self, host: str) -> Wrap:
        raise self._unreachable(f"run commands on {host}")

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        raise self._unreachable("run commands on hosts")

    def stop_heartbeat(self, node: str, stopped: bool) -> None:
        raise self._unreachable(f"stop the heartbeat of node {node} (not supported by the kubeconfig target)")

    def certificate(self, link: str) -> CertificateLink:
        raise TargetError(f"{self.name}: reissuing the {link} certificate is not supported by the kubeconfig "
                          f"target (it holds no CA key); use the lab")

    def service_host(self) -> tuple[Wrap, str]:
        raise TargetError(f"{self.name}: the webhook server runs as a pod behind a Service here, which needs "
                          f"consent to create pods: add spec.target.helperPod (its namespace holds the pod; "
                          f"pythonImage, default python:3.12-alpine, runs it)")

    @property
    def lock_path(self) -> Path:
        digest = hashlib.sha256(self.server.encode()).hexdigest()[:16]
        return state_home() / "targets" / f"{digest}.lock"


def current_context(path: Path | None) -> str:
    """The kubeconfig's current context (`TargetError` when it has none)."""
    from kubernetes import config  # late: slow to import

    try:
        _, active = config.list_kube_config_contexts(str(path) if path else None)  # type: ignore[no-untyped-call]
    except Exception as exc:  # ConfigException, OSError … for a missing or bad file
        raise TargetError(f"kubeconfig {path or os.environ.get('KUBECONFIG') or '~/.kube/config'}: cannot be "
                          f"loaded ({exc}); name the file with spec.target.kubeconfig") from exc
    if not active:
        raise TargetError("the kubeconfig has no current context; name one: --target kubeconfig:CONTEXT")
    return str(active["name"])
