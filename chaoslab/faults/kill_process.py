"""`kill-process`: signal a control-plane component — its leader, a follower, a random one, all, or a
named host. KILL and TERM end the process (the lab's supervisor, or the kubelet on a real host, starts it
again); STOP pauses it until revert sends CONT.

Traps worth knowing, and why `select: leader` resolves leadership right before injecting: etcd hands its
leadership over on TERM (no real election); kube-scheduler releases its Lease on a graceful exit (fast
takeover), kube-controller-manager does not (takeover only after the lease expires)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from chaoslab.errors import InjectionError
from chaoslab.faults.base import Injection, Undo
from chaoslab.leaders import etcd_leader, holder_host, lease_holder
from chaoslab.targets import Target

SIGNALS = ("KILL", "TERM", "STOP")


@dataclass(frozen=True)
class KillProcessParams:
    component: str
    """etcd, kube-apiserver, kube-scheduler or kube-controller-manager."""
    select: str = "leader"
    """leader, follower, random, all, or host:NAME."""
    signal: str = "KILL"
    """KILL, TERM or STOP (STOP is resumed with CONT at revert)."""
    count: int = 1
    """How many processes `follower` and `random` pick."""


class KillProcess:
    kind: ClassVar[str] = "kill-process"
    params_type: ClassVar[type] = KillProcessParams
    level: ClassVar[str] = "node"
    """Acts on hosts (processes, packet filters, kubelets), not through the API."""

    def __init__(self, params: KillProcessParams, duration: float = 0.0, rng: random.Random | None = None) -> None:
        self.params = params
        self.duration = duration
        self.rng = rng or random.Random()

    def _leader(self, target: Target) -> str | None:
        component = self.params.component
        if component == "etcd":
            members = target.etcd_members()
            try:
                return etcd_leader(members)
            finally:
                for m in members.values():
                    m.close()
        if component == "kube-apiserver":
            raise InjectionError("kill-process: kube-apiserver has no leader; use select: random, all or "
                                 "host:NAME")
        return holder_host(lease_holder(target.api(), component))

    def choose(self, target: Target) -> tuple[str, list[str]]:
        """(role, hosts) this fault hits now."""
        p = self.params
        hosts = target.hosts(p.component)
        if not hosts:
            raise InjectionError(f"kill-process: {target.name} runs no {p.component}")
        if p.select.startswith("host:"):
            host = p.select.split(":", 1)[1]
            if host not in hosts:
                raise InjectionError(f"kill-process: {target.name} runs no {p.component} on {host!r}; "
                                     f"hosts: {', '.join(hosts)}")
            return p.select, [host]
        if p.select == "all":
            return "all", hosts
        if p.select == "random":
            return "random", self.rng.sample(hosts, min(p.count, len(hosts)))
        leader = self._leader(target)
        if leader is None or leader not in hosts:
            raise InjectionError(f"kill-process: {p.component} of {target.name} has no leader right now "
                                 f"({leader!r}); is the control plane healthy? (`chaoslab lab status`)")
        if p.select == "leader":
            return "leader", [leader]
        followers = [h for h in hosts if h != leader]
        return "follower", self.rng.sample(followers, min(p.count, len(followers)))

    def resolve(self, target: Target, index: int) -> Injection:
        p = self.params
        role, hosts = self.choose(target)
        undo = tuple(Undo("signal", {"component": p.component, "host": h, "signal": "CONT"})
                     for h in hosts) if p.signal == "STOP" else ()
        return Injection(self.kind, index, p.component, role, tuple(f"{p.component}@{h}" for h in hosts), undo)

    def inject(self, target: Target, injection: Injection) -> None:
        for t in injection.targets:
            component, host = t.split("@", 1)
            target.signal(component, host, self.params.signal)
