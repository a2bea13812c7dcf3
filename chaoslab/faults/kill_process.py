"""`kill-process`: signal a control-plane component — its leader, a follower, a random one, all, or a
named host. KILL and TERM end the process (the lab's supervisor, or the kubelet on a real host, starts it
again); STOP pauses it until revert sends CONT.

Traps worth knowing, and why `select: leader` resolves leadership right before injecting: etcd hands its
leadership over on TERM (no real election); kube-scheduler releases its Lease on a graceful exit (fast
takeover), kube-controller-manager does not (takeover only after the lease expires).

A kill is confirmed, not assumed: after KILL or TERM the target is asked for the component's pid until it
is no longer the one signalled (`process-gone` on the timeline, with the replacement if one already runs),
and, for the fault's duration, until a new one runs (`process-restarted`). On kubeadm hosts this is what
tells a real kill from a trap such as deleting a static pod's mirror pod, which kills nothing.

Through a kubeconfig target with helper pods allowed (`spec.target.helperPod`), the signal is sent by a
short-lived privileged pod pinned to the host's node (`chaoslab.targets.helperpod.kill_script`): its undo is
`delete-pod` (written before the pod exists), its log says which pid it signalled, when that pid was gone
and which pid the kubelet started in its place; those become the same timeline events. A STOP is resumed by
the pod itself on deletion or after the fault's duration, even when chaoslab is gone."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from chaoslab.clients.leaders import current_etcd_leader, holder_host, lease_holder
from chaoslab.errors import InjectionError, TargetError
from chaoslab.faults.base import FaultBase, FaultParams, Injection, Record, Undo, ignore_events
from chaoslab.targets import Target
from chaoslab.targets.helperpod import (
    HelperPods,
    HelperPodSettings,
    kill_script,
    node_for_host,
    pid_after,
    pod_manifest,
)

SIGNALS = ("KILL", "TERM", "STOP")
CONFIRM_SECONDS = 30.0
"""How long a KILLed or TERMed process may keep its pid before the injection counts as failed (a graceful
TERM of an apiserver takes a few seconds)."""


@dataclass(frozen=True)
class KillProcessParams(FaultParams):
    component: str
    """etcd, kube-apiserver, kube-scheduler or kube-controller-manager."""
    select: str = "leader"
    """leader, follower, random, all, or host:NAME."""
    signal: str = "KILL"
    """KILL, TERM or STOP (STOP is resumed with CONT at revert)."""
    count: int = 1
    """How many processes `follower` and `random` pick."""


class KillProcess(FaultBase[KillProcessParams]):
    kind: ClassVar[str] = "kill-process"
    params_type: ClassVar[type] = KillProcessParams
    level: ClassVar[str] = "node"
    """Acts on hosts (processes, packet filters, kubelets), not through the API."""

    def _leader(self, target: Target) -> str | None:
        component = self.params.component
        if component == "etcd":
            return current_etcd_leader(target)
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
        runner = target.helper_pods()
        if runner is not None:
            # Names fixed now, so the undo on disk names the pods before they exist.
            run = uuid.uuid4().hex[:6]
            undo = tuple(Undo("delete-pod", {"namespace": runner.settings.namespace,
                                             "name": f"chaoslab-kill-{index}-{i}-{run}", "node": target.node_of(h),
                                             "host": h}) for i, h in enumerate(hosts))
            return Injection(self.kind, index, p.component, role, tuple(f"{p.component}@{h}" for h in hosts), undo)
        undo = tuple(Undo("signal", {"component": p.component, "host": h, "signal": "CONT"})
                     for h in hosts) if p.signal == "STOP" else ()
        return Injection(self.kind, index, p.component, role, tuple(f"{p.component}@{h}" for h in hosts), undo)

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        sig = self.params.signal
        if injection.through_pods:
            pods = [u.params for u in injection.undo]
            return ([f"create privileged pod {p['namespace']}/{p['name']} on node {p['node']}: SIG{sig} to {t}, "
                     f"pid before and after on its log" for p, t in zip(pods, injection.targets, strict=True)],
                    [f"delete pod {p['namespace']}/{p['name']}" + (" (its script sends SIGCONT on TERM)"
                                                                   if sig == "STOP" else "") for p in pods])
        return ([f"send SIG{sig} to {t}" for t in injection.targets],
                [f"send SIGCONT to {t}" for t in injection.targets] if sig == "STOP" else [])

    def helper_pods(self, target: Target, injection: Injection) -> list[dict[str, Any]]:
        """The pods `inject` would create through the API (generated, not created)."""
        return [self.helper_manifest(target, u.params) for u in injection.undo]

    def refused_helper_pods(self, target: Target, index: int, settings: HelperPodSettings) -> list[dict[str, Any]]:
        if target.provider():
            return []  # a managed control plane: no pod reaches its hosts either
        _, hosts = self.choose(target)
        nodes = target.api().get("/api/v1/nodes")["items"]
        program = kill_script(self.params.component, self.params.signal, self.duration)
        return [pod_manifest(f"chaoslab-kill-{index}-{i}", node_for_host(h, nodes), program, self.duration, settings)
                for i, h in enumerate(hosts)]

    def helper_manifest(self, target: Target, params: Mapping[str, Any]) -> dict[str, Any]:
        """The helper pod that signals the component on one host (`params`: a `delete-pod` undo's)."""
        runner = target.helper_pods()
        if runner is None:
            raise InjectionError(f"kill-process: {target.name} does not run helper pods")
        program = kill_script(self.params.component, self.params.signal, self.duration)
        return pod_manifest(params["name"], params["node"], program, self.duration, runner.settings)

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        sig = self.params.signal
        if injection.through_pods:
            for t, undo in zip(injection.targets, injection.undo, strict=True):
                self._inject_by_pod(target, t, undo.params, record)
            return
        for t in injection.targets:
            component, host = t.split("@", 1)
            # The signal lands between `signalling` and `process-signalled`, the measurement's start. A
            # lookup first opens the target's connection (a new ssh one took 6 s on a loaded machine), so
            # that bracket holds the signal call alone.
            target.pid(component, host)
            record("signalling", fault=injection.fault, index=injection.index, target=t, signal=sig)
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

    def _inject_by_pod(self, target: Target, t: str, params: Mapping[str, Any], record: Record) -> None:
        runner = target.helper_pods()
        assert runner is not None
        ns, name, sig = params["namespace"], params["name"], self.params.signal
        runner.create(self.helper_manifest(target, params))
        start = time.monotonic()
        record("helper-pod-created", target=t, pod=f"{ns}/{name}", node=params["node"])
        lines = runner.wait_for(name, lambda ls: any(x.startswith("signalled") for x in ls),
                                runner.settings.start_timeout, ns)
        errors = [x for x in lines if x.startswith("error")]
        if errors:
            raise InjectionError(f"kill-process: helper pod {ns}/{name} on node {params['node']}: {errors[0]}; "
                                 f"is {self.params.component} a process on that host (static pod, systemd)?")
        old = pid_after("old-pid", lines)
        record("process-signalled", target=t, signal=sig, pid=old, via=f"pod {ns}/{name}")
        if sig == "STOP":
            state = next((x.split(" ", 1)[1] for x in lines if x.startswith("state ")), None)
            if state is None:
                lines = runner.wait_for(name, lambda ls: any(x.startswith("state ") for x in ls), 10.0, ns)
                state = next((x.split(" ", 1)[1] for x in lines if x.startswith("state ")), "")
            record("process-state", target=t, pid=old, state=state)
            return
        lines = runner.wait_for(name, lambda ls: any(x.startswith("gone ") for x in ls), CONFIRM_SECONDS, ns)
        if not any(x.startswith("gone ") for x in lines):
            raise InjectionError(f"kill-process: {self.params.component} on {t} (pid {old}) still runs "
                                 f"{CONFIRM_SECONDS:g} s after SIG{sig} (helper pod {ns}/{name})")
        record("process-gone", target=t, pid=old, replacement=None, after=round(time.monotonic() - start, 3))
        if self.duration > 0:
            threading.Thread(target=self._watch_pod_restart, args=(runner, t, ns, name, old, record, start),
                             name=f"restart-{t}", daemon=True).start()

    def _watch_pod_restart(self, runner: HelperPods, t: str, ns: str, name: str, old: int | None, record: Record,
                           start: float) -> None:
        """Record the new pid the helper pod reports (the kubelet restarted the static pod's process)."""
        try:
            lines = runner.wait_for(name, lambda ls: any(x.startswith("new-pid ") for x in ls), self.duration, ns)
        except (InjectionError, TargetError):
            return  # the pod deleted at revert, or the API away: no restart was seen by the pod
        new = pid_after("new-pid", lines)
        if new is not None:
            record("process-restarted", target=t, pid=new, old_pid=old, after=round(time.monotonic() - start, 3))
