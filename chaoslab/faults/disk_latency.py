"""`disk-latency`: make an etcd member's disk slow — every `fdatasync`/`fsync` it makes waits `delay`
(± `jitter`) first — or stall it: every sync during the first `stall` seconds is held until they are over.

Which member: `select` by etcd role, resolved right before injecting: `leader`, `follower`, `random`,
`host:NAME`, or `all` (every member: the whole cluster on slow disks).

How: strace attached to the member's process injects the wait before each sync (`chaoslab.faults.
sync_tracer`, started detached on the member's host through the target, with chaoslab's Python there).
The sync itself then runs on the real disk; only the wait is added, in the calling thread, so it reaches
etcd's WAL (one fdatasync per batch of raft entries, on the raft loop's path: a slow WAL on the leader slows
every write, on a follower its acknowledgements) and its bbolt backend (one fdatasync per commit, every
100 ms or 10 000 writes). The price: a tracer stops the process at every system call, not only syncs
(strace cannot use seccomp-bpf on a process it attaches to), which on this machine moved a single member's
write p50 from 0.6 to 1.5 ms and p99 from 3 to 15 ms with nothing injected; docs/faults-storage.md has the
measurement and why strace was chosen over a FUSE passthrough.

Undo (written before injection): `stop-tracer` per member, with the member's pid and the tracer's marker:
SIGTERM the tracer (strace detaches, a held sync is released at once) and check that it is gone and that
the member names no tracer (`TracerPid: 0` in /proc/PID/status). The dead-man's switch is the tracer's own
deadline: it exits `duration + deadman` seconds after injection whatever happens to chaoslab, and its strace
runs under `timeout` with the same deadline and dies with it (PR_SET_PDEATHSIG). `chaoslab recover` replays
the undo. A member restarted meanwhile has a new pid and was never traced.

Timeline: ``disk-latency`` per member at injection (``host``, ``pid``, ``delay_ms``, ``jitter_ms``,
``stall_ms``); the effect shows in etcd's own WAL fsync and backend commit histograms (the `etcd-metrics`
probe), write latency (the `writes` probe) and leader elections.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from chaoslab.clients.hosts import Command, wrap
from chaoslab.errors import InjectionError, TargetError
from chaoslab.faults.base import (
    FaultParams,
    Injection,
    Record,
    SwitchedFault,
    Undo,
    apply_undo,
    ignore_events,
)
from chaoslab.faults.netpods import pod_undo, runner_of
from chaoslab.faults.partition import HEAL_MARGIN, select_etcd_host
from chaoslab.faults.sync_tracer import strace_argv, tracer_command
from chaoslab.spec.durations import parse_duration
from chaoslab.targets import Target
from chaoslab.targets.helperpod import (
    HelperPods,
    HelperPodSettings,
    node_for_host,
    pid_after,
    pod_manifest,
    trace_script,
)


@dataclass(frozen=True)
class DiskLatencyParams(FaultParams):
    select: str = "leader"
    """The member by etcd role: leader, follower, random, all or host:NAME."""
    delay: str | float = 0
    """Wait added before each sync, e.g. `200ms` (0: none; then `stall` must be set)."""
    jitter: str | float = 0
    """Variation of the wait, uniform within delay ± jitter, drawn again every `period`; at most `delay`."""
    stall: str | float = 0
    """First hold every sync for this long, e.g. `15s`, as a device that stops answering (0: no stall)."""
    period: str | float = "1s"
    """How often a jittered wait is drawn again (each draw re-attaches strace; default 1 s)."""
    deadman: int = HEAL_MARGIN
    """Seconds after the duration at which the tracer ends by itself if chaoslab did not end it (default 60)."""

    def ms(self, name: str) -> int:
        """A duration field in whole milliseconds."""
        return round(parse_duration(getattr(self, name), name) * 1000)

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for settings that contradict each other; the types are the schema's job."""
        try:
            delay, jitter, stall, period = (self.ms(n) for n in ("delay", "jitter", "stall", "period"))
        except ValueError as exc:
            return [("delay", str(exc))]
        out = []
        if not (delay or stall):
            out.append(("delay", "set delay, stall or both; there is nothing to slow down"))
        if jitter > delay:
            out.append(("jitter", f"jitter {jitter} ms exceeds the delay {delay} ms (a wait cannot be negative); "
                                  + "lower it or raise the delay"))
        if period < 100:
            out.append(("period", f"period {period} ms: give at least 100ms (each draw re-attaches strace)"))
        if not (self.select in ("leader", "follower", "random", "all") or self.select.startswith("host:")):
            out.append(("select", f"{self.select!r} is not one of leader, follower, random, all, host:NAME"))
        return out


class DiskLatency(SwitchedFault[DiskLatencyParams]):
    kind: ClassVar[str] = "disk-latency"
    params_type: ClassVar[type] = DiskLatencyParams
    level: ClassVar[str] = "node"
    """Acts on hosts (processes, packet filters, kubelets), not through the API."""

    def choose(self, target: Target) -> tuple[str, list[str]]:
        if self.params.select == "all":
            return "all", target.hosts("etcd")
        role, host, _ = select_etcd_host(target, self.params.select, self.rng, self.kind)
        return role, [host]

    def resolve(self, target: Target, index: int) -> Injection:
        role, hosts = self.choose(target)
        targets = tuple(f"etcd@{h}" for h in hosts)
        runner = target.helper_pods()
        if runner is not None:
            self._pod_problem()
            # Names fixed now, so the undo on disk names the pods before they exist.
            return Injection(self.kind, index, "etcd", role, targets, pod_undo(target, runner, "disk", index, hosts, {}))
        tag = f"l{index}-{uuid.uuid4().hex[:8]}"
        undo = []
        for host in hosts:
            pid = target.pid("etcd", host)
            if pid is None:
                raise InjectionError(f"disk-latency: etcd on {host} of {target.name} is not running; nothing to "
                                     f"slow down (see `chaoslab lab status`)")
            undo.append(Undo("stop-tracer", {"host": host, "pid": pid, "marker": f"chaoslab-{tag}-{host}"}))
        return Injection(self.kind, index, "etcd", role, targets, tuple(undo))

    def _pod_problem(self) -> None:
        """Through a helper pod the tracer is strace itself (the image has no chaoslab): a steady delay only."""
        p = self.params
        if p.ms("jitter") or p.ms("stall") or not p.ms("delay"):
            raise InjectionError("disk-latency through helper pods takes a steady `delay` only: `jitter` and "
                                 "`stall` need chaoslab's tracer on the host (use the ssh target)")

    def pod_program(self) -> str:
        argv = strace_argv(0, self.params.ms("delay") * 1000)
        argv[argv.index("-p") + 1] = "{pid}"
        return trace_script(argv, self.duration)

    def helper_pods(self, target: Target, injection: Injection) -> list[dict[str, Any]]:
        """The pods `inject` would create through the API (generated, not created)."""
        runner = target.helper_pods()
        if runner is None or not injection.through_pods:
            return []
        return [pod_manifest(u.params["name"], u.params["node"], self.pod_program(), self.duration, runner.settings)
                for u in injection.undo]

    def refused_helper_pods(self, target: Target, index: int, settings: HelperPodSettings) -> list[dict[str, Any]]:
        if target.provider():
            return []  # a managed control plane: no pod reaches its etcd either
        _, hosts = self.choose(target)
        nodes = target.api().get("/api/v1/nodes")["items"]
        return [pod_manifest(f"chaoslab-disk-{index}-{i}", node_for_host(h, nodes), self.pod_program(),
                             self.duration, settings) for i, h in enumerate(hosts)]

    def _inject_by_pods(self, target: Target, injection: Injection, record: Record) -> None:
        """Create every member's pod at once, then wait for each to report its member traced."""
        runner = runner_of(target, self.kind)
        for manifest, u in zip(self.helper_pods(target, injection), injection.undo, strict=True):
            runner.create(manifest)
            record("helper-pod-created", target=f"etcd@{u.params['host']}",
                   pod=f"{u.params['namespace']}/{u.params['name']}", node=u.params["node"])
        for u in injection.undo:
            self._await_traced(runner, u, injection.index, record)

    def _await_traced(self, runner: HelperPods, u: Undo, index: int, record: Record) -> None:
        ns, name = u.params["namespace"], u.params["name"]
        lines = runner.wait_for(name, lambda ls: any(x.startswith("traced ") for x in ls),
                                runner.settings.start_timeout, ns)
        errors = [x for x in lines if x.startswith("error")]
        if errors:
            raise InjectionError(f"disk-latency: helper pod {ns}/{name} on node {u.params['node']}: {errors[0]}; "
                                 f"does the image {runner.settings.image} have strace, and is etcd a process on "
                                 f"that host?")
        record("disk-latency", fault=self.kind, index=index, host=u.params["host"], pid=pid_after("old-pid", lines),
               delay_ms=self.params.ms("delay"), jitter_ms=0, stall_ms=0, via=f"pod {ns}/{name}")

    def command(self, target: Target, params: Mapping[str, Any], until: int) -> Command:
        p = self.params
        return Command(tracer_command(target.python(params["host"]), params["pid"], p.ms("delay"), p.ms("jitter"),
                                      p.ms("stall"), p.ms("period") / 1000, until, params["marker"]))

    def inject(self, target: Target, injection: Injection, record: Record = ignore_events) -> None:
        """Start every member's tracer at once (each start is a Python process: seconds under load), so the
        members of `select: all` are slowed, or stalled, together."""
        if injection.through_pods:
            self._inject_by_pods(target, injection, record)
            return
        p, until = self.params, int(time.time()) + self.deadline()

        def start(undo: Undo) -> Exception | None:
            try:
                target.run_commands(wrap([self.command(target, undo.params, until)], target.host_wrap(undo.params["host"])))
            except (TargetError, OSError) as exc:
                return exc
            record("disk-latency", fault=self.kind, index=injection.index, host=undo.params["host"],
                   pid=undo.params["pid"], delay_ms=p.ms("delay"), jitter_ms=p.ms("jitter"), stall_ms=p.ms("stall"))
            return None

        with ThreadPoolExecutor(len(injection.undo)) as pool:
            results = list(pool.map(start, injection.undo))
        failed = [(u.params["host"], exc) for u, exc in zip(injection.undo, results) if exc is not None]
        if failed:
            for undo, exc in zip(injection.undo, results):
                if exc is None:
                    apply_undo(target, undo)
            host, exc = failed[0]
            raise InjectionError(f"disk-latency: could not attach to etcd on {host} ({exc}); is strace installed "
                                 f"there (`chaoslab lab install`), and is no other tracer attached? "
                                 f"{len(results) - len(failed)} tracer(s) already started were stopped") from exc

    def describe(self, target: Target, injection: Injection) -> tuple[list[str], list[str]]:
        if injection.through_pods:
            pods = [u.params for u in injection.undo]
            return ([f"create privileged pod {u['namespace']}/{u['name']} on node {u['node']}: strace delays every "
                     f"sync of {t} by {self.params.ms('delay')} ms for {self.duration:g} s"
                     for u, t in zip(pods, injection.targets, strict=True)],
                    [f"delete pod {u['namespace']}/{u['name']} (its script stops strace and checks etcd names no "
                     f"tracer)" for u in pods])
        until = int(time.time()) + self.deadline()
        lines = [" ".join(c.argv) for u in injection.undo
                 for c in wrap([self.command(target, u.params, until)], target.host_wrap(u.params["host"]))]
        return ([f"{u.params['host']}: {line}" for u, line in zip(injection.undo, lines)]
                + [f"each tracer ends by itself {self.deadline()} s after injection (dead-man's switch)"],
                [f"{u.params['host']}: stop the tracer {u.params['marker']}; check etcd pid {u.params['pid']} "
                 f"names no tracer" for u in injection.undo])
