"""What each lab process runs: the command line of every etcd member, apiserver, scheduler,
controller-manager, the haproxy load balancer and the node simulator, plus haproxy's configuration.

Pure: it turns a `LabLayout` and the binaries' paths into `ProcessSpec`s that `chaoslab.lab.up` writes to
`lab.json` and the supervisor runs. Control-plane processes run inside their host's network namespace and
a UTS namespace of their own whose hostname is the host name (cp1…), because kube-scheduler and
kube-controller-manager put `os.Hostname()` into their Lease `holderIdentity`.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

from chaoslab.lab.config import Component, Host, LabLayout
from chaoslab.lab.install import Binaries
from chaoslab.lab.pki import SERVICE_CIDR

# The hostname is set by a fixed script; the host name and the command arrive as positional arguments,
# never interpolated into the script.
_SET_HOSTNAME = 'hostname "$0" && exec "$@"'


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: identity, command line, log file."""

    id: str
    kind: str
    host: str | None
    argv: list[str]
    log: str
    start_when: str | None = None
    """An HTTPS URL that must answer 200 before the first start (restarts do not wait, like kubelet's)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _on_host(host: Host, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", host.netns, "unshare", "--uts", "--", "sh", "-c", _SET_HOSTNAME,
            host.name, *argv]


def _flags(**flags: object) -> list[str]:
    """`--flag-name=value` for every keyword (underscores become dashes)."""
    out = []
    for name, value in flags.items():
        if isinstance(value, bool):
            value = str(value).lower()
        out.append(f"--{name.replace('_', '-')}={value}")
    return out


def etcd(layout: LabLayout, bins: Binaries, host: Host) -> list[str]:
    pki, t = layout.pki_dir, layout.config.etcd
    cluster = ",".join(f"{h.name}={layout.etcd_peer_url(h)}" for h in layout.hosts)
    return [str(bins.etcd), *_flags(
        name=host.name,
        data_dir=layout.data_dir(host) / "etcd",
        listen_client_urls=f"{layout.etcd_client_url(host)},https://127.0.0.1:{layout.ETCD_CLIENT_PORT}",
        advertise_client_urls=layout.etcd_client_url(host),
        listen_peer_urls=layout.etcd_peer_url(host),
        initial_advertise_peer_urls=layout.etcd_peer_url(host),
        initial_cluster=cluster,
        initial_cluster_state="new",
        initial_cluster_token=layout.prefix,
        cert_file=pki / f"etcd-{host.name}.crt",
        key_file=pki / f"etcd-{host.name}.key",
        trusted_ca_file=pki / "ca.crt",
        client_cert_auth=True,
        peer_cert_file=pki / f"etcd-{host.name}.crt",
        peer_key_file=pki / f"etcd-{host.name}.key",
        peer_trusted_ca_file=pki / "ca.crt",
        peer_client_cert_auth=True,
        heartbeat_interval=t.heartbeat_ms,
        election_timeout=t.election_ms,
        pre_vote=t.pre_vote,
        logger="zap",
        log_outputs="stderr",
        **({"quota_backend_bytes": layout.config.etcd_quota_bytes} if layout.config.etcd_quota_bytes else {}),
    )]


def kube_apiserver(layout: LabLayout, bins: Binaries, host: Host) -> list[str]:
    pki = layout.pki_dir
    return [str(bins.kube_apiserver), *_flags(
        advertise_address=host.address,
        secure_port=layout.APISERVER_PORT,
        insecure_port=0,
        # kubeadm's stacked topology: each apiserver talks to the etcd member on its own host.
        etcd_servers=f"https://127.0.0.1:{layout.ETCD_CLIENT_PORT}",
        etcd_cafile=pki / "ca.crt",
        etcd_certfile=pki / "apiserver-etcd-client.crt",
        etcd_keyfile=pki / "apiserver-etcd-client.key",
        tls_cert_file=pki / f"apiserver-{host.name}.crt",
        tls_private_key_file=pki / f"apiserver-{host.name}.key",
        client_ca_file=pki / "ca.crt",
        service_account_issuer="https://kubernetes.default.svc.cluster.local",
        service_account_key_file=pki / "sa.pub",
        service_account_signing_key_file=pki / "sa.key",
        service_cluster_ip_range=SERVICE_CIDR,
        authorization_mode="Node,RBAC",
        allow_privileged=True,
        endpoint_reconciler_type="lease",
        profiling=False,
        # Since taint-based evictions (always on from 1.18), pods leave a failed node when their toleration
        # of its not-ready/unreachable taint expires; the DefaultTolerationSeconds admission plugin gives
        # pods without one these seconds. kube-controller-manager's --pod-eviction-timeout no longer counts.
        default_not_ready_toleration_seconds=layout.config.pod_eviction_timeout,
        default_unreachable_toleration_seconds=layout.config.pod_eviction_timeout,
    )]


def _leader_election(layout: LabLayout) -> list[str]:
    """Flags shared by both leader-elected components: leader election and, when set, client QPS."""
    le, qps = layout.config.leader_election, layout.config.kube_api_qps
    rate = _flags(kube_api_qps=qps, kube_api_burst=2 * qps) if qps else []
    return rate + _flags(
        leader_elect=True,
        leader_elect_resource_lock="leases",
        leader_elect_lease_duration=f"{le.lease_duration:g}s",
        leader_elect_renew_deadline=f"{le.renew_deadline:g}s",
        leader_elect_retry_period=f"{le.retry_period:g}s",
    )


def kube_scheduler(layout: LabLayout, bins: Binaries, host: Host) -> list[str]:
    kubeconfig = layout.kubeconfig_for("kube-scheduler", host)
    return [str(bins.kube_scheduler), *_flags(
        kubeconfig=kubeconfig,
        authentication_kubeconfig=kubeconfig,
        authorization_kubeconfig=kubeconfig,
        bind_address="127.0.0.1",
        secure_port=10259,
        port=0,
    ), *_leader_election(layout)]


def kube_controller_manager(layout: LabLayout, bins: Binaries, host: Host) -> list[str]:
    pki, cfg = layout.pki_dir, layout.config
    kubeconfig = layout.kubeconfig_for("kube-controller-manager", host)
    return [str(bins.kube_controller_manager), *_flags(
        kubeconfig=kubeconfig,
        authentication_kubeconfig=kubeconfig,
        authorization_kubeconfig=kubeconfig,
        bind_address="127.0.0.1",
        secure_port=10257,
        port=0,
        # No cluster-signing certificates in the lab: CSR signing is the one controller left out.
        controllers="*,-csrsigning",
        service_account_private_key_file=pki / "sa.key",
        root_ca_file=pki / "ca.crt",
        use_service_account_credentials=True,
        cluster_name=layout.prefix,
        allocate_node_cidrs=False,
        node_monitor_grace_period=f"{cfg.node_monitor_grace}s",
        pod_eviction_timeout=f"{cfg.pod_eviction_timeout}s",
    ), *_leader_election(layout)]


def _in_host(layout: LabLayout, host: Host) -> str:
    return f"namespace {host.netns} source {layout.client_address}"


def haproxy_config(layout: LabLayout) -> str:
    """TCP pass-through: TLS ends at the apiservers and etcd members, whose certs carry 127.0.0.1. Every
    server connection (and health check) starts inside the server's host namespace from the lab's client
    address, so a partition can cut a host from its clients (`chaoslab.lab.network`)."""
    lines = [
        "global",
        "  maxconn 4000",
        "defaults",
        "  mode tcp",
        "  timeout connect 2s",
        "  timeout client 1h",
        "  timeout server 1h",
        "frontend apiserver",
        f"  bind 127.0.0.1:{layout.apiserver_port}",
        "  default_backend apiservers",
        "backend apiservers",
        "  balance roundrobin",
        # Anonymous GET /readyz is allowed by the default RBAC (system:public-info-viewer).
        "  option httpchk GET /readyz",
    ]
    for h in layout.apiserver_hosts:
        lines.append(f"  server {h.name} {h.address}:{layout.APISERVER_PORT} {_in_host(layout, h)} "
                     "check check-ssl verify none inter 1s fall 2 rise 1")
    for h in layout.apiserver_hosts:
        lines += [f"listen apiserver-{h.name}", f"  bind 127.0.0.1:{layout.apiserver_host_port(h)}",
                  f"  server {h.name} {h.address}:{layout.APISERVER_PORT} {_in_host(layout, h)}"]
    for h in layout.hosts:
        lines += [f"listen etcd-{h.name}", f"  bind 127.0.0.1:{layout.etcd_client_port(h)}",
                  f"  server {h.name} {h.address}:{layout.ETCD_CLIENT_PORT} {_in_host(layout, h)}"]
    return "\n".join(lines) + "\n"


def nodes(layout: LabLayout) -> list[str]:
    cfg = layout.config
    # The simulator runs on the same interpreter as chaoslab itself (the project's virtualenv).
    return [sys.executable, "-m", "chaoslab.lab.nodes",
            "--kubeconfig", str(layout.kubeconfig_for("nodes")),
            "--count", str(cfg.nodes),
            "--name-prefix", f"{cfg.name}-node-",
            "--lease-seconds", str(cfg.node_lease_seconds),
            "--paused-dir", str(layout.nodes_control_dir),
            "--stats-file", str(layout.state_dir / "nodes-stats.json")]


_ON_HOST = {
    "etcd": etcd,
    "kube-apiserver": kube_apiserver,
    "kube-scheduler": kube_scheduler,
    "kube-controller-manager": kube_controller_manager,
}


def process_specs(layout: LabLayout, bins: Binaries) -> list[ProcessSpec]:
    """Every process of the lab, in start order."""
    out = []
    for c in layout.components():
        argv = _argv(layout, bins, c)
        if argv:
            out.append(ProcessSpec(id=c.id, kind=c.kind, host=c.host, argv=argv, log=str(layout.log_file(c)),
                                   start_when=_start_when(layout, c)))
    return out


def _start_when(layout: LabLayout, c: Component) -> str | None:
    """Leader-elected components and the node simulator start once their apiserver serves /readyz, so a
    new lab does not begin with a crash-loop while RBAC is still being bootstrapped."""
    if c.kind in ("kube-scheduler", "kube-controller-manager") and c.host is not None:
        host = layout.host(c.host)
        target = host if host in layout.apiserver_hosts else layout.apiserver_hosts[0]
        return f"{layout.apiserver_host_url(target)}/readyz"
    if c.kind == "nodes":
        return f"{layout.apiserver_url}/readyz"
    return None


def _argv(layout: LabLayout, bins: Binaries, c: Component) -> list[str]:
    if c.host is not None:
        host = layout.host(c.host)
        return _on_host(host, _ON_HOST[c.kind](layout, bins, host))
    if c.kind == "haproxy":
        return [str(bins.haproxy), "-db", "-f", str(layout.haproxy_config)]
    if c.kind == "nodes":
        return nodes(layout) if layout.config.nodes else []
    raise ValueError(f"unknown component {c.kind}")
