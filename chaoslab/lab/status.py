"""What a running lab looks like right now: its processes (from the supervisor's status file), the etcd
leader and term, the Lease holders of kube-scheduler and kube-controller-manager, apiserver readiness and
Ready nodes. `chaoslab lab status` prints it; `up` and the tests wait on `readiness`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from chaoslab.clients.etcd import EtcdMember, MemberStatus, RpcError, Tls
from chaoslab.clients.kubeapi import KubeApi
from chaoslab.clients.leaders import LEASES, lease_holder
from chaoslab.errors import LabError, TargetError
from chaoslab.lab.config import LabLayout

LEADER_LEASES = tuple(LEASES)


@dataclass(frozen=True)
class ProcessState:
    id: str
    state: str
    pid: int | None
    started: float | None
    restarts: int
    last_exit: str | None


@dataclass
class LabStatus:
    name: str
    supervisor: int | None
    processes: list[ProcessState] = field(default_factory=list)
    etcd: dict[str, MemberStatus | str] = field(default_factory=dict)
    """Member name → its status, or the error that kept it from answering."""
    leases: dict[str, str | None] = field(default_factory=dict)
    """Lease name → holderIdentity (None: nobody holds it)."""
    apiservers: dict[str, bool] = field(default_factory=dict)
    nodes_ready: int = 0
    nodes_total: int = 0

    @property
    def etcd_leader(self) -> str | None:
        leaders = {s.leader_name for s in self.etcd.values() if isinstance(s, MemberStatus) and s.leader_id}
        return leaders.pop() if len(leaders) == 1 else None

    def waiting_for(self, expected_nodes: int) -> list[str]:
        """What is not ready yet; empty when the lab is ready."""
        out = []
        down = [n for n, s in self.etcd.items() if not isinstance(s, MemberStatus)]
        if down:
            out.append(f"etcd {', '.join(down)}")
        elif self.etcd_leader is None:
            out.append("etcd leader")
        out += [f"apiserver {h}" for h, ready in self.apiservers.items() if not ready]
        out += [f"{name} lease" for name in LEADER_LEASES if not self.leases.get(name)]
        if self.nodes_ready < expected_nodes:
            out.append(f"nodes ({self.nodes_ready}/{expected_nodes} Ready)")
        return out


def _processes(layout: LabLayout) -> tuple[int | None, list[ProcessState]]:
    try:
        data = json.loads(layout.status_file.read_text())
    except FileNotFoundError:
        return None, []
    return data.get("supervisor"), [ProcessState(id=k, **v) for k, v in data["processes"].items()]


def etcd_members(layout: LabLayout, timeout: float = 1.0) -> dict[str, EtcdMember]:
    tls = Tls(layout.pki_dir / "ca.crt", layout.pki_dir / "admin.crt", layout.pki_dir / "admin.key")
    return {h.name: EtcdMember(h.name, "127.0.0.1", layout.etcd_client_port(h), tls, timeout) for h in layout.hosts}


def _ready_node(node: dict[str, Any]) -> bool:
    conds = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _member_status(member: EtcdMember) -> MemberStatus | str:
    try:
        return member.status()
    except RpcError as exc:
        return f"unreachable ({exc.code().name})"


def _apiserver_ready(api: KubeApi, url: str, timeout: float) -> bool:
    try:
        # The admin session: its CA, and its kept-alive connections across polls.
        return api.session.get(f"{url}/readyz", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def _lease_holder(api: KubeApi, name: str) -> str | None:
    try:
        return lease_holder(api, name)
    except TargetError:
        return None


def _nodes(api: KubeApi) -> tuple[int, int]:
    try:
        nodes = api.get("/api/v1/nodes", labelSelector="chaoslab.io/simulated=true")["items"]
    except TargetError:
        return 0, 0
    return sum(_ready_node(n) for n in nodes), len(nodes)


def collect(layout: LabLayout, api: KubeApi | None = None, timeout: float = 1.0,
            members: dict[str, EtcdMember] | None = None) -> LabStatus:
    """One look at the lab, every question asked at once, each waiting at most `timeout` seconds.
    Never raises for an unhealthy lab: what does not answer is reported as such."""
    sup, procs = _processes(layout)
    st = LabStatus(layout.config.name, sup, procs)
    api = api or KubeApi.from_kubeconfig(layout.kubeconfig, timeout=timeout)
    own_members = members is None
    members = members or etcd_members(layout, timeout)
    with ThreadPoolExecutor(max_workers=12) as pool:
        etcd = {name: pool.submit(_member_status, m) for name, m in members.items()}
        ready = {h.name: pool.submit(_apiserver_ready, api, layout.apiserver_host_url(h), timeout)
                 for h in layout.apiserver_hosts}
        leases = {name: pool.submit(_lease_holder, api, name) for name in LEADER_LEASES}
        nodes = pool.submit(_nodes, api)
        st.etcd = {name: f.result() for name, f in etcd.items()}
        st.apiservers = {name: f.result() for name, f in ready.items()}
        st.leases = {name: f.result() for name, f in leases.items()}
        st.nodes_ready, st.nodes_total = nodes.result()
    if own_members:
        for m in members.values():
            m.close()
    return st


def wait_ready(layout: LabLayout, *, timeout: float, progress: Callable[[str], None] = lambda _: None) -> LabStatus:
    """Poll until etcd has a leader, every apiserver is ready, both Leases are held and all nodes are
    Ready; raise `LabError` naming what is still missing (and where its log is) after `timeout`."""
    deadline = time.monotonic() + timeout
    api = KubeApi.from_kubeconfig(layout.kubeconfig, timeout=1.0)
    members = etcd_members(layout)
    try:
        return _wait(layout, api, members, deadline, timeout, progress)
    finally:
        for m in members.values():
            m.close()


def _wait(layout: LabLayout, api: KubeApi, members: dict[str, EtcdMember], deadline: float, timeout: float,
          progress: Callable[[str], None]) -> LabStatus:
    last: list[str] = []
    while True:
        st = collect(layout, api, members=members)
        waiting = st.waiting_for(layout.config.nodes)
        if not waiting:
            return st
        if waiting != last:
            progress("waiting for " + ", ".join(waiting))
            last = waiting
        if time.monotonic() > deadline:
            raise LabError(
                f"lab {layout.config.name!r} not ready after {timeout:.0f} s: still waiting for "
                f"{', '.join(waiting)}; see `chaoslab lab logs COMPONENT --host cpN` (logs in {layout.log_dir})"
            )
        time.sleep(0.25)
