"""`memory-limit`: give one control-plane process a memory limit it did not have, so that a load that makes
it grow (an `api-overload` LIST storm, a relist after a restart) ends the way it does on a node with a
memory limit: the kernel's OOM killer ends it, and the supervisor (kubelet, systemd, the lab) starts it
again. The question it answers: does this load take an apiserver down, and does the control plane ride
through the restart?

    - kind: memory-limit
      component: kube-apiserver   # default; or etcd, kube-scheduler, kube-controller-manager
      host: cp1                    # default: the first host that runs it
      headroom: 128Mi              # what it may add to what it holds now (Mi or Gi)

How: a cgroup v1 memory cgroup of its own, `chaoslab-<tag>` under the one the process is in (so every
limit above still applies), with `memory.limit_in_bytes` = headroom, and the process moved into it
(`chaoslab.faults.memory_cgroup`, run on the host's machine with the target's Python: over ssh, or on the
lab's machine itself, since `ip netns exec` hides the cgroup hierarchy). The pages it holds at injection
stay charged where they were (kernels since 6.x cannot move them), so the limit is headroom over its
memory at injection, not a cap on its total: the `memory-limit` event records both.

Undo (`release-memory`, written before injection): move whatever is still in the cgroup back to the
parent, remove the cgroup, disarm the dead-man's switch; what the cgroup saw (peak usage, failed charges,
OOM kills) goes on the timeline as `memory-released`. A process the OOM killer ended leaves an empty
cgroup; its replacement was started by the supervisor in the supervisor's own cgroup, never in this one.
The dead-man's switch (armed first) runs the same release at `duration + deadman` if chaoslab died.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from chaoslab.clients.hosts import Command, wrap
from chaoslab.errors import InjectionError, RevertError, TargetError
from chaoslab.faults.base import (
    FaultParams,
    Injection,
    Record,
    SwitchedFault,
    Undo,
    arm_switch,
    disarm_switch,
    ignore_events,
    switch_commands,
)
from chaoslab.faults.memory_cgroup import cgroup_dir, memory_cgroup
from chaoslab.faults.partition import HEAL_MARGIN
from chaoslab.targets import Target

COMPONENTS = ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager")
_SIZE = re.compile(r"^([1-9][0-9]{0,5})(Mi|Gi)$")
MODULE = "chaoslab.faults.memory_cgroup"


@dataclass(frozen=True)
class MemoryLimitParams(FaultParams):
    component: str = "kube-apiserver"
    """The process limited: kube-apiserver (default), etcd, kube-scheduler or kube-controller-manager."""
    host: str = ""
    """The host whose process is limited; default: the first host that runs the component."""
    headroom: str = "256Mi"
    """Memory the process may add to what it holds at injection, in Mi or Gi (default 256Mi)."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the dead-man's switch releases the process (default 60)."""

    def bytes(self) -> int:
        m = _SIZE.match(str(self.headroom))
        if not m:
            raise ValueError(f"headroom {self.headroom!r}: give a size in Mi or Gi, e.g. 128Mi")
        return int(m.group(1)) * (1 << (20 if m.group(2) == "Mi" else 30))

    def problems(self) -> list[tuple[str, str]]:
        out = []
        try:
            if self.bytes() < 16 << 20:
                out.append(("headroom", f"{self.headroom}: give at least 16Mi (less ends any process at once)"))
        except ValueError as exc:
            out.append(("headroom", str(exc)))
        if self.component not in COMPONENTS:
            out.append(("component", f"{self.component!r} is not one of {', '.join(COMPONENTS)}"))
        if isinstance(self.deadman, bool) or not isinstance(self.deadman, int) or self.deadman < 5:
            out.append(("deadman", f"{self.deadman!r}: give whole seconds, at least 5"))
        return out


class MemoryLimit(SwitchedFault[MemoryLimitParams]):
    kind: ClassVar[str] = "memory-limit"
    params_type: ClassVar[type] = MemoryLimitParams
    level: ClassVar[str] = "node"
    """Acts on a host's process (its cgroup), not through the API."""

    def resolve(self, target: Target, index: int) -> Injection:
        p = self.params
        hosts = target.hosts(p.component)
        host = p.host or (hosts[0] if hosts else "")
        if host not in hosts:
            raise InjectionError(f"memory-limit: {p.component} does not run on {host or 'any host'} of "
                                 f"{target.name}; hosts: {', '.join(hosts) or 'none'}")
        pid = target.pid(p.component, host)
        if pid is None:
            raise InjectionError(f"memory-limit: {p.component} on {host} of {target.name} is not running")
        read = wrap([Command(("cat", f"/proc/{pid}/cgroup"))], target.machine_wrap(host))
        try:
            parent = memory_cgroup(target.run_commands(read)[0])
        except (TargetError, ValueError) as exc:
            raise InjectionError(f"memory-limit: cannot read the memory cgroup of {p.component} on {host} "
                                 f"(pid {pid}): {exc}") from exc
        tag = f"m{index}-{uuid.uuid4().hex[:8]}"
        cgroup = f"{parent.rstrip('/')}/chaoslab-{tag}"
        params = {"host": host, "pid": pid, "component": p.component, "marker": f"chaoslab-{tag}", "cgroup": cgroup}
        try:
            cgroup_dir(cgroup)  # a path the helper and the switch take (systemd's \x2d escapes do not)
        except ValueError as exc:
            raise InjectionError(f"memory-limit: {p.component} on {host} is in memory cgroup {parent!r}, under "
                                 f"which chaoslab cannot name one of its own ({exc})") from exc
        return Injection(self.kind, index, p.component, "host", (f"{p.component}@{host}",),
                         (Undo("release-memory", params),))

    def cap_command(self, target: Target, u: Mapping[str, Any]) -> Command:
        return helper_command(target, u["host"], "cap", "--pid", str(u["pid"]), "--limit", str(self.params.bytes()),
                              "--cgroup", u["cgroup"])

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        u = injection.undo[0].params
        arm_switch(target, {u["host"]: [release_command(target, u)]}, self.deadline(), u["marker"], machine=True)
        try:
            out = run_helper(target, u["host"], self.cap_command(target, u))
        except (TargetError, ValueError) as exc:
            # The switch stays armed: the move may have happened all the same (an ssh timeout); the executor
            # reverts a failed injection, and the revert disarms it.
            raise InjectionError(f"memory-limit: could not limit {u['component']} on {u['host']} ({exc})") from exc
        record("memory-limit", fault=self.kind, index=injection.index, host=u["host"], pid=u["pid"],
               component=u["component"], cgroup=u["cgroup"], headroom_bytes=out["limit"], rss_bytes=out["rss"])

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        u = injection.undo[0].params
        arm = switch_commands(target, {u["host"]: [release_command(target, u)]}, self.deadline(), u["marker"],
                              machine=True)
        return (["arm: " + " ".join(c.argv) for c in arm]
                + [f"{u['host']}: " + " ".join(c.argv)
                   for c in wrap([self.cap_command(target, u)], target.machine_wrap(u["host"]))]
                + [(f"{u['component']} (pid {u['pid']}) may then add {self.params.headroom} to what it holds; "
                    f"released by the switch {self.deadline()} s after injection if chaoslab did not")],
                release_lines(u))


def helper_command(target: Target, host: str, *args: str) -> Command:
    """`chaoslab.faults.memory_cgroup` with `args`, by the host's Python (unwrapped)."""
    return Command((*target.python(host), "-m", MODULE, *args))


def run_helper(target: Target, host: str, command: Command) -> dict[str, Any]:
    """Run a helper command on the host's machine; its JSON answer (`ValueError` if it is not JSON)."""
    out: dict[str, Any] = json.loads(target.run_commands(wrap([command], target.machine_wrap(host)))[0])
    return out


def release_command(target: Target, u: Mapping[str, Any]) -> Command:
    return helper_command(target, u["host"], "release", "--cgroup", u["cgroup"])


def release_lines(u: Mapping[str, Any]) -> list[str]:
    return [f"{u['host']}: move what is left in {u['cgroup']} back to its parent and remove it",
            f"disarm the dead-man's switch {u['marker']}"]


def release_memory(target: Target, u: Mapping[str, Any], record: Record = ignore_events) -> None:
    """The `release-memory` undo; `RevertError` if the cgroup is still there."""
    try:
        out = run_helper(target, u["host"], release_command(target, u))
    except (TargetError, ValueError) as exc:
        raise RevertError(f"memory-limit: could not release {u['cgroup']} on {u['host']} ({exc}); run "
                          f"`chaoslab recover`") from exc
    disarm_switch(target, [u["host"]], u["marker"])
    record("memory-released", fault="memory-limit", host=u["host"], pid=u["pid"], component=u["component"],
           cgroup=u["cgroup"], gone=bool(out.get("gone")), max_usage_bytes=out.get("maxUsage"),
           failcnt=out.get("failcnt"), oom_kills=out.get("oomKills"))
