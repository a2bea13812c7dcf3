"""`kill-process`: signal a control-plane component — its leader, a follower, a random one, all, or a
named host. KILL and TERM end the process (the lab's supervisor, or the kubelet on a real host, starts it
again); STOP pauses it until revert sends CONT.

Traps worth knowing, and why `select: leader` resolves leadership right before injecting: etcd hands its
leadership over on TERM (no real election); kube-scheduler releases its Lease on a graceful exit (fast
takeover), kube-controller-manager does not (takeover only after the lease expires).

A kill is confirmed, not assumed: after KILL or TERM the target is asked for the component's pid until it
is no longer the one signalled (`process-gone` on the timeline, with the replacement if one already runs),
and, for the fault's duration, until a new one runs (`process-restarted`). On kubeadm hosts this is what
tells a real kill from a trap such as deleting a static pod's mirror pod, which kills nothing."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import ClassVar

from chaoslab.errors import InjectionError, TargetError
from chaoslab.faults.base import Injection, Record, Undo, ignore_events
from chaoslab.leaders import etcd_leader, holder_host, lease_holder
from chaoslab.targets import Target

SIGNALS = ("KILL", "TERM", "STOP")
CONFIRM_SECONDS = 30.0
"""How long a KILLed or TERMed process may keep its pid before the injection counts as failed (a graceful
TERM of an apiserver takes a few seconds)."""


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

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        sig = self.params.signal
        for t in injection.targets:
            component, host = t.split("@", 1)
            pid = target.signal(component, host, sig)
            record("process-signalled", target=t, signal=sig, pid=pid)
            if sig in ("KILL", "TERM"):
                self._confirm(target, t, pid, record)

    def _confirm(self, target: Target, t: str, pid: int, record: Record, poll: float = 0.1) -> None:
        component, host = t.split("@", 1)
        start = time.monotonic()
        while (now := target.pid(component, host)) == pid:
            if time.monotonic() - start > CONFIRM_SECONDS:
                raise InjectionError(f"kill-process: {component} on {host} (pid {pid}) still runs "
                                     f"{CONFIRM_SECONDS:g} s after SIG{self.params.signal}; is that pid really "
                                     f"{component}? ({target.name})")
            time.sleep(poll)
        record("process-gone", target=t, pid=pid, replacement=now, after=round(time.monotonic() - start, 3))
        if now is None and self.duration > 0:
            threading.Thread(target=self._watch_restart, args=(target, t, pid, record, start),
                             name=f"restart-{t}", daemon=True).start()

    def _watch_restart(self, target: Target, t: str, old: int, record: Record, start: float) -> None:
        """Record the first new pid seen within the fault's duration (one lookup a second)."""
        component, host = t.split("@", 1)
        while time.monotonic() - start < self.duration:
            time.sleep(1.0)
            try:
                now = target.pid(component, host)
            except TargetError:  # a lookup failing mid-fault is not the fault's failure: look again
                now = None
            if now is not None and now != old:
                record("process-restarted", target=t, pid=now, old_pid=old,
                       after=round(time.monotonic() - start, 3))
                return
