"""The local lab as a target: processes from the supervisor's status file, signals straight to their pids,
the API through haproxy, etcd members through their per-member ports. The only core module that knows
the lab's layout."""

from __future__ import annotations

import json
import os
import signal as signals
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from chaoslab.clients.etcd import EtcdMember
from chaoslab.clients.hosts import Command, Endpoint, Wrap, in_netns, on_host
from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import InjectionError, TargetError
from chaoslab.lab.config import Component, Host, LabLayout
from chaoslab.lab.lifecycle import saved_layout, supervisor_pid
from chaoslab.lab.network import BRIDGE, HOST_DEVICE
from chaoslab.lab.status import etcd_members
from chaoslab.lab.system import run
from chaoslab.targets import CertificateLink, TargetBase, unknown_params

#: Links whose leaf certificate `cert-expiry` may reissue → (file name in the lab's pki/, the component using it).
CERTIFICATE_LINKS = {"scheduler-client": ("kube-scheduler", "kube-scheduler"),
                     "controller-manager-client": ("kube-controller-manager", "kube-controller-manager")}
CLIENTS = "clients"
"""The name of the clients' endpoint in flows (`cp2->clients`)."""


class LabTarget(TargetBase):
    kind = "lab"
    cli_name = "name"
    is_lab = True

    def __init__(self, layout: LabLayout) -> None:
        self.layout = layout
        self.name = f"lab {layout.config.name!r}"
        self.renewal_window = 2 * layout.config.leader_election.retry_period + 1.0
        self._api: KubeApi | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> LabTarget:
        unknown_params(cls.kind, params, ("name", "state_root"))
        root = params.get("state_root")
        return cls.running(str(params.get("name") or "lab"), Path(str(root)) if root else None)

    @classmethod
    def running(cls, name: str = "lab", state_root: Path | None = None) -> LabTarget:
        """The running lab called `name`; `TargetError` with the fix when it is not running."""
        layout = saved_layout(name, state_root)
        if not supervisor_pid(layout):
            raise TargetError(f"no lab {name!r} is running; start one with `chaoslab lab up"
                              f"{'' if name == 'lab' else ' --name ' + name}`, or name a cluster with --target")
        return cls(layout)

    def api(self) -> KubeApi:
        if self._api is None:
            self._api = KubeApi.from_kubeconfig(self.layout.kubeconfig, timeout=2.0)
        return self._api

    def endpoint(self, host: str) -> Endpoint:
        return Endpoint(host, self._host(host).address, device=HOST_DEVICE)

    def clients(self, host: str) -> Endpoint:
        # haproxy connects to every host from the lab's client address (`chaoslab.lab.network`).
        self._host(host)
        try:
            config = self.layout.haproxy_config.read_text()
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot read {self.layout.haproxy_config} ({exc})") from exc
        if f"source {self.layout.client_address}" not in config:
            # A lab started by an older chaoslab: rules against the client address would cut nothing.
            raise TargetError(f"{self.name}: its load balancer does not connect from the client address "
                              f"{self.layout.client_address}, so clients cannot be cut; restart the lab "
                              f"(`chaoslab lab down --name {self.layout.config.name}`, then `lab up`)")
        return Endpoint(CLIENTS, self.layout.client_address, managed=False)

    def host_wrap(self, host: str) -> Wrap:
        return in_netns(self._host(host).netns)

    def machine_wrap(self, host: str) -> Wrap:
        self._host(host)
        return on_host

    def service_host(self) -> tuple[Wrap, str]:
        """The switch namespace and the bridge's service address (`chaoslab.lab.network`)."""
        sw, address = self.layout.switch_netns, self.layout.service_address
        shown = run(["ip", "-n", sw, "-o", "-4", "addr", "show", "dev", BRIDGE], check=False, timeout=10,
                    error=TargetError).stdout
        if f" {address}/" not in shown:
            # A lab started by an older chaoslab: its bridge has no address the apiservers could reach.
            raise TargetError(f"{self.name}: its lab network has no service address {address} for servers the "
                              f"apiservers reach; restart the lab (`chaoslab lab down --name "
                              f"{self.layout.config.name}`, then `lab up`)")
        return in_netns(sw), address

    def certificate(self, link: str) -> CertificateLink:
        """The lab's pki/ files (`chaoslab.lab.pki`): every host's scheduler (or controller-manager) shares
        one client certificate."""
        if link not in CERTIFICATE_LINKS:
            raise TargetError(f"{self.name} has no certificate link {link!r}; links: "
                              f"{', '.join(CERTIFICATE_LINKS)}")
        name, component = CERTIFICATE_LINKS[link]
        pki = self.layout.pki_dir
        return CertificateLink(link, pki / f"{name}.crt", pki / f"{name}.key", pki / "ca.crt", pki / "ca.key",
                               tuple((component, h) for h in self.hosts(component)))

    def python(self, host: str) -> tuple[str, ...]:
        self._host(host)
        return (sys.executable,)

    def _host(self, name: str) -> Host:
        try:
            return self.layout.host(name)
        except KeyError:
            raise TargetError(f"{self.name} has no host {name!r}; hosts: "
                              f"{', '.join(h.name for h in self.layout.hosts)}") from None

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        return [run(c.argv, check=not c.may_fail, timeout=30, error=TargetError, stdin=c.stdin).stdout for c in commands]

    def apiserver_endpoints(self) -> Mapping[str, str]:
        out = {"lb": self.layout.apiserver_url}
        out.update({h.name: self.layout.apiserver_host_url(h) for h in self.layout.apiserver_hosts})
        return out

    def etcd_members(self, timeout: float = 1.0) -> dict[str, EtcdMember]:
        return etcd_members(self.layout, timeout)

    def hosts(self, component: str) -> list[str]:
        return [c.host for c in self.layout.components() if c.kind == component and c.host]

    def _status(self) -> dict[str, dict[str, object]]:
        try:
            data: dict[str, dict[str, object]] = json.loads(self.layout.status_file.read_text())["processes"]
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            raise TargetError(f"{self.name}: cannot read {self.layout.status_file} ({exc})") from exc
        return data

    def pid(self, component: str, host: str) -> int | None:
        entry = self._status().get(Component(component, host).id)
        pid = entry.get("pid") if entry else None
        return pid if isinstance(pid, int) else None

    def signal(self, component: str, host: str, signal: str) -> int:
        pid = self.pid(component, host)
        if pid is None:
            raise InjectionError(f"{component} on {host} of {self.name} is not running; "
                                 f"see `chaoslab lab status`")
        try:
            os.kill(pid, signals.Signals[f"SIG{signal}"])
        except ProcessLookupError as exc:
            raise InjectionError(f"{component} on {host} (pid {pid}) exited before SIG{signal} reached it") from exc
        return pid

    def component_log(self, component: str, host: str) -> str:
        """A component's own log on a host, as it wrote it (etcd: zap JSON; the others: klog), for the
        ground truth of a run (`chaoslab.probes.records`). The lab keeps one file per component and host
        under its state directory (`chaoslab lab logs`), appended across restarts."""
        if component not in {c.kind for c in self.layout.components()}:
            raise TargetError(f"{self.name} runs no {component}")
        path = self.layout.log_file(Component(component, self._host(host).name))
        try:
            return path.read_text(errors="replace")
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot read the log of {component} on {host} ({path}: {exc})") from exc

    def hold(self, component: str, host: str, held: bool) -> None:
        path = self.layout.state_dir / "hold" / Component(component, host).id
        if held:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def simulated_nodes(self) -> list[str]:
        """Names of the lab's simulated worker nodes (the ones whose heartbeat the lab controls)."""
        cfg = self.layout.config
        return [f"{cfg.name}-node-{i}" for i in range(1, cfg.nodes + 1)]

    def stop_heartbeat(self, node: str, stopped: bool) -> None:
        """The node simulator reads `nodes_control_dir`: a file named after a node stops its kubelet
        (no Lease renewals, no status, no pod work) until the file is removed (chaoslab.lab.nodes)."""
        if node not in self.simulated_nodes():
            raise TargetError(f"{self.name} cannot stop the heartbeat of node {node!r}: not one of its simulated "
                              f"nodes ({', '.join(self.simulated_nodes()) or 'none'})")
        path = self.layout.nodes_control_dir / node
        if stopped:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def heartbeat_stopped(self, node: str) -> bool:
        return (self.layout.nodes_control_dir / node).exists()

    def describe(self) -> dict[str, object]:
        return {"kind": "lab", "name": self.layout.config.name, "state_root": str(self.layout.config.state_root),
                "renewal_window": self.renewal_window}

    @property
    def lock_path(self) -> Path:
        return self.layout.state_dir / "run.lock"
