"""The lab's settings and its layout: names, addresses, ports and files, derived from a few choices.

`LabConfig` is what a user chooses (`chaoslab lab up --name --hosts --nodes ...`); `LabLayout` is everything
derived from it, so the CLI, the supervisor, the tests and the engine's lab target agree on where things are
without passing paths around. Both are pure: nothing here touches the machine.

    >>> layout = LabLayout(LabConfig(name="demo"))
    >>> layout.hosts[0].name, layout.hosts[0].address, layout.apiserver_url
    ('cp1', '10.213.0.11', 'https://127.0.0.1:16443')
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Profile = Literal["ha", "small"]

#: Components every control-plane host runs, in start order.
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager")

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


def default_state_root() -> Path:
    """Where labs keep their state: `$CHAOSLAB_STATE_DIR`, else `~/.local/state/chaoslab/labs`."""
    env = os.environ.get("CHAOSLAB_STATE_DIR")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~/.local/state/chaoslab/labs"))


@dataclass(frozen=True)
class LeaderElection:
    """client-go leader-election timings for kube-scheduler and kube-controller-manager."""

    lease_duration: float = 15.0
    """Seconds a Lease is valid after its last renewal (`--leader-elect-lease-duration`, default 15)."""
    renew_deadline: float = 10.0
    """Seconds the holder keeps trying to renew before giving up (`--leader-elect-renew-deadline`, default 10)."""
    retry_period: float = 2.0
    """Seconds between acquire/renew attempts (`--leader-elect-retry-period`, default 2)."""


@dataclass(frozen=True)
class EtcdTimings:
    """etcd raft timings."""

    heartbeat_ms: int = 100
    """Leader heartbeat interval in milliseconds (`--heartbeat-interval`, default 100)."""
    election_ms: int = 1000
    """Election timeout in milliseconds (`--election-timeout`, default 1000)."""
    pre_vote: bool = False
    """Raft pre-vote (`--pre-vote`); off by default in etcd 3.4."""


@dataclass(frozen=True)
class LabConfig:
    """What a user chooses when bringing a lab up."""

    name: str = "lab"
    """Lab name; namespaces, files and the kubeconfig context carry it. Lowercase, at most 12 characters."""
    profile: Profile = "ha"
    """`ha`: an apiserver on every host behind haproxy; `small`: one apiserver, on cp1."""
    hosts: int = 3
    """Control-plane hosts, each with one etcd member (3 or 5)."""
    nodes: int = 3
    """Simulated worker nodes."""
    subnet: str = "10.213.0.0/24"
    """Lab network; lives only inside the lab's own network namespaces."""
    port_base: int = 16443
    """First loopback port in the root namespace: apiserver load balancer; see `LabLayout` for the rest."""
    state_root: Path = field(default_factory=default_state_root)
    """Directory holding one state directory per lab."""
    restart_delay: float = 2.0
    """Seconds the supervisor waits before restarting a component that exited (like kubelet's back-off)."""
    leader_election: LeaderElection = field(default_factory=LeaderElection)
    etcd: EtcdTimings = field(default_factory=EtcdTimings)
    node_lease_seconds: int = 40
    """Simulated nodes' Lease duration; they renew every quarter of it, as kubelet does."""
    node_monitor_grace: int = 40
    """kube-controller-manager `--node-monitor-grace-period` in seconds."""
    pod_eviction_timeout: int = 300
    """Default `tolerationSeconds` for not-ready/unreachable taints (seconds) before pods are evicted: the
    apiserver's `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`
    (DefaultTolerationSeconds admission; applies to pods created after the lab is up, without tolerations
    of their own)."""
    etcd_quota_bytes: int | None = None
    """etcd's backend quota in bytes (`--quota-backend-bytes`); None keeps etcd's default (2 GiB). A small
    one (e.g. 33554432, 32 MiB) lets the `etcd-nospace` fault fill the database in a second."""
    kube_api_qps: int | None = None
    """Client QPS of kube-scheduler and kube-controller-manager (`--kube-api-qps`, burst twice that);
    None keeps their defaults (50 and 20). Raise it for scale runs of thousands of pods."""

    def problems(self) -> list[str]:
        """Everything wrong with these settings, as field: message."""
        out = []
        if not _NAME.match(self.name):
            out.append(f"name: {self.name!r} must be lowercase letters, digits and '-', at most 12 characters")
        if self.profile not in ("ha", "small"):
            out.append(f"profile: {self.profile!r} is not one of ha, small")
        if self.hosts not in (1, 3, 5):
            out.append(f"hosts: {self.hosts} is not one of 1, 3, 5 (etcd wants an odd member count)")
        if not 0 <= self.nodes <= 5000:
            out.append(f"nodes: {self.nodes} is not between 0 and 5000")
        try:
            net = ipaddress.ip_network(self.subnet)
            if net.num_addresses < 64 or net.version != 4:
                out.append(f"subnet: {self.subnet} must be an IPv4 network of /26 or larger")
        except ValueError as exc:
            out.append(f"subnet: {exc}")
        if not 1024 <= self.port_base <= 65000:
            out.append(f"port_base: {self.port_base} is not between 1024 and 65000")
        if self.etcd_quota_bytes is not None and not 1 << 20 <= self.etcd_quota_bytes <= 8 << 30:
            out.append(f"etcd_quota_bytes: {self.etcd_quota_bytes} is not between 1 MiB and 8 GiB")
        t = self.etcd
        if t.heartbeat_ms < 1 or not 5 * t.heartbeat_ms <= t.election_ms <= 50000:
            # etcd itself refuses to start otherwise; say so before anything is started.
            out.append(f"etcd: election timeout {t.election_ms} ms must be at least 5 × the heartbeat interval "
                       f"({t.heartbeat_ms} ms) and at most 50000 ms")
        return out


@dataclass(frozen=True)
class Host:
    """One control-plane host: a network + UTS namespace with its own address."""

    name: str
    index: int
    address: str
    netns: str


@dataclass(frozen=True)
class Component:
    """One supervised process of the lab."""

    kind: str
    """etcd, kube-apiserver, kube-scheduler, kube-controller-manager, haproxy or nodes."""
    host: str | None
    """The control-plane host it runs on; None for processes in the root namespace."""

    @property
    def id(self) -> str:
        return f"{self.kind}@{self.host}" if self.host else self.kind


class LabLayout:
    """Every name, address, port and path of one lab, derived from its `LabConfig`."""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        net = ipaddress.ip_network(config.subnet)
        self.prefix = f"chaoslab-{config.name}"
        self.switch_netns = f"{self.prefix}-net"
        self.hosts = tuple(
            Host(name=f"cp{i}", index=i, address=str(net.network_address + 10 + i), netns=f"{self.prefix}-cp{i}")
            for i in range(1, config.hosts + 1)
        )
        self.prefix_len = net.prefixlen
        self.client_address = str(net.network_address + 2)
        """Where haproxy's connections come from inside every host namespace (on `lo` there): what a
        host's packet filter sees of its clients, so a partition can cut a host from them too."""
        self.service_address = str(net.network_address + 3)
        """On the bridge, in the switch namespace: where chaoslab runs servers every apiserver must reach
        (a `webhook-outage` webhook); every host reaches it directly over the bridge."""
        self.management_address = str(net.network_address + 4)
        """Reserved for a namespace outside the hosts that manages them over the bridge (the ssh target's
        test client); no lab component uses it. Each role has its own address: hosts keep the neighbour
        entry of an address whose namespace has gone, so a shared one goes dark for them for a while."""
        self.state_dir = config.state_root / config.name
        self.port_base = config.port_base

    # ---- hosts and components -------------------------------------------------------------------
    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    @property
    def apiserver_hosts(self) -> tuple[Host, ...]:
        return self.hosts if self.config.profile == "ha" else self.hosts[:1]

    def components(self) -> list[Component]:
        """Every supervised process, in start order."""
        out = [Component("etcd", h.name) for h in self.hosts]
        out += [Component("kube-apiserver", h.name) for h in self.apiserver_hosts]
        out.append(Component("haproxy", None))
        out += [Component("kube-scheduler", h.name) for h in self.hosts]
        out += [Component("kube-controller-manager", h.name) for h in self.hosts]
        out.append(Component("nodes", None))
        return out

    # ---- loopback ports in the root namespace ---------------------------------------------------
    @property
    def apiserver_port(self) -> int:
        """haproxy's frontend for all apiservers."""
        return self.port_base

    def apiserver_host_port(self, host: Host) -> int:
        """One apiserver, through haproxy, for per-apiserver probes."""
        return self.port_base + 10 + host.index

    def etcd_client_port(self, host: Host) -> int:
        """One etcd member's client port, through haproxy."""
        return self.port_base + 20 + host.index

    @property
    def ports(self) -> list[int]:
        out = [self.apiserver_port]
        out += [self.apiserver_host_port(h) for h in self.apiserver_hosts]
        out += [self.etcd_client_port(h) for h in self.hosts]
        return out

    @property
    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def apiserver_host_url(self, host: Host) -> str:
        """One apiserver, from the root namespace (for per-apiserver probes)."""
        return f"https://127.0.0.1:{self.apiserver_host_port(host)}"

    # ---- addresses inside the lab network -------------------------------------------------------
    APISERVER_PORT = 6443
    ETCD_CLIENT_PORT = 2379
    ETCD_PEER_PORT = 2380

    def local_apiserver_url(self, host: Host) -> str:
        """The apiserver a host's scheduler and controller-manager use: its own, or cp1's in `small`."""
        target = host if host in self.apiserver_hosts else self.apiserver_hosts[0]
        return f"https://{target.address}:{self.APISERVER_PORT}"

    def etcd_peer_url(self, host: Host) -> str:
        return f"https://{host.address}:{self.ETCD_PEER_PORT}"

    def etcd_client_url(self, host: Host) -> str:
        return f"https://{host.address}:{self.ETCD_CLIENT_PORT}"

    def etcd_endpoints(self) -> dict[str, str]:
        """Member name → client URL reachable from the root namespace."""
        return {h.name: f"https://127.0.0.1:{self.etcd_client_port(h)}" for h in self.hosts}

    # ---- files ----------------------------------------------------------------------------------
    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig for users, kubectl and chaoslab itself."""
        return self.state_dir / "kubeconfig"

    def kubeconfig_for(self, user: str, host: Host | None = None) -> Path:
        """The kubeconfig of one client: `admin` (the one users get), `nodes`, or a component on a host."""
        if user == "admin":
            return self.kubeconfig
        suffix = f"-{host.name}" if host else ""
        return self.state_dir / "kubeconfigs" / f"{user}{suffix}.yaml"

    @property
    def context(self) -> str:
        """The kubeconfig cluster/context name."""
        return self.prefix

    @property
    def haproxy_config(self) -> Path:
        return self.state_dir / "haproxy.cfg"

    @property
    def plan_file(self) -> Path:
        """The processes the supervisor runs (written by `lab up`)."""
        return self.state_dir / "lab.json"

    @property
    def status_file(self) -> Path:
        """The supervisor's current view: pid, start time and restarts of every component."""
        return self.state_dir / "status.json"

    @property
    def events_file(self) -> Path:
        """Every start and exit, one JSON object a line."""
        return self.state_dir / "events.jsonl"

    @property
    def supervisor_pid_file(self) -> Path:
        return self.state_dir / "supervisor.pid"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def log_file(self, component: Component) -> Path:
        return self.log_dir / f"{component.id}.log"

    def data_dir(self, host: Host) -> Path:
        return self.state_dir / "hosts" / host.name

    @property
    def nodes_control_dir(self) -> Path:
        """One empty file per simulated node whose heartbeat is stopped (see chaoslab.lab.nodes)."""
        return self.state_dir / "nodes" / "paused"
