"""disk-latency without a cluster: its settings, the tracer's command line and the pattern that finds
exactly it, the undo written at resolve, and a failed attachment that stops what had started."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from chaoslab.clients.hosts import Command, Wrap, in_netns
from chaoslab.errors import InjectionError, SpecError, TargetError
from chaoslab.faults import build
from chaoslab.faults.sync_tracer import strace_argv, tracer_command, tracer_pattern


@pytest.mark.parametrize(("params", "message"), [
    ({}, "nothing to slow down"),
    ({"delay": "10ms", "jitter": "20ms"}, "jitter 20 ms exceeds the delay 10 ms"),
    ({"delay": "10ms", "period": "10ms"}, "period 10 ms: give at least 100ms"),
    ({"delay": "10ms", "select": "leaders"}, "'leaders' is not one of"),
])
def test_meaningless_settings_are_refused_with_the_parameter(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build("disk-latency", params)


def test_strace_delays_both_syncs_in_microseconds_on_every_thread() -> None:
    assert strace_argv(42, 200000) == ["strace", "-f", "-qq", "-p", "42", "-e", "trace=fdatasync,fsync", "-e",
                                       "signal=none", "-e", "inject=fdatasync,fsync:delay_enter=200000us"]


def test_the_pattern_matches_its_own_tracer_and_not_a_wrapper_or_another_marker() -> None:
    argv = tracer_command(["/usr/bin/python3"], 42, 200, 0, 0, 1.0, 1767225600, "chaoslab-l0-1a2b3c4d-cp1")
    pattern = re.compile(tracer_pattern("chaoslab-l0-1a2b3c4d-cp1"))
    assert pattern.search(" ".join(argv))
    assert not pattern.search(" ".join(in_netns("chaoslab-lab-cp1")(argv)))  # the `ip netns exec` wrapper
    assert not pattern.search(" ".join(argv).replace("-cp1", "-cp10"))
    with pytest.raises(ValueError, match="marker"):
        tracer_pattern("x; rm -rf /")


class FakeTarget:
    """Three etcd hosts; cp2 leads. `fail_on`: the host whose command fails."""

    name = "fake"

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.ran: list[tuple[str, ...]] = []

    def hosts(self, component: str) -> list[str]:
        return ["cp1", "cp2", "cp3"]

    def etcd_members(self, timeout: float = 1.0) -> dict[str, Any]:
        raise TargetError("no etcd here")

    def pid(self, component: str, host: str) -> int | None:
        return {"cp1": 101, "cp2": 102, "cp3": 103}[host]

    def python(self, host: str) -> tuple[str, ...]:
        return ("python3",)

    def helper_pods(self) -> None:
        return None  # runs commands on its hosts, as the lab and ssh targets do

    def host_wrap(self, host: str) -> Wrap:
        return in_netns(f"ns-{host}")

    def run_commands(self, commands: Sequence[Command]) -> list[str]:
        out = []
        for c in commands:
            self.ran.append(c.argv)
            if self.fail_on and self.fail_on in c.argv and "sync_tracer" in " ".join(c.argv):
                raise TargetError("strace: attach: ptrace(PTRACE_SEIZE, 103): Operation not permitted")
            out.append("TracerPid:\t0\n" if c.argv[4] == "grep" else "")
        return out


def test_all_members_are_resolved_with_their_pids_and_a_failed_attachment_stops_the_started_ones() -> None:
    target = FakeTarget(fail_on="ns-cp3")
    fault = build("disk-latency", {"select": "all", "delay": "50ms"}, duration=30)
    injection = fault.resolve(target, 0)  # type: ignore[arg-type]
    assert injection.targets == ("etcd@cp1", "etcd@cp2", "etcd@cp3") and injection.role == "all"
    assert [(u.action, u.params["host"], u.params["pid"]) for u in injection.undo] == [
        ("stop-tracer", "cp1", 101), ("stop-tracer", "cp2", 102), ("stop-tracer", "cp3", 103)]
    with pytest.raises(InjectionError, match="could not attach to etcd on cp3.*2 tracer"):
        fault.inject(target, injection)  # type: ignore[arg-type]
    stopped = [argv for argv in target.ran if "pkill" in argv]
    assert [argv[3] for argv in stopped] == ["ns-cp1", "ns-cp2"]
    lines, undo = fault.describe(target, injection)  # type: ignore[arg-type]
    assert "--delay-ms 50" in lines[0] and "ends by itself 90 s after injection" in lines[-1]
    assert undo[0] == "cp1: stop the tracer " + injection.undo[0].params["marker"] + "; check etcd pid 101 names no tracer"


def test_through_a_helper_pod_strace_itself_delays_the_syncs_and_only_a_steady_delay_is_taken() -> None:
    fault = build("disk-latency", {"delay": "200ms"}, duration=30)
    program = fault.pod_program()  # type: ignore[attr-defined]
    assert ("strace -f -qq -p \"$old\" -e trace=fdatasync,fsync -e signal=none -e "
            "inject=fdatasync,fsync:delay_enter=200000us -o \"$out\"") in program
    assert "sleep 30 &" in program and "untraced $old delayed" in program
    for params in ({"delay": "200ms", "jitter": "50ms"}, {"stall": "5s"}):
        with pytest.raises(InjectionError, match="steady `delay` only"):
            build("disk-latency", params)._pod_problem()  # type: ignore[attr-defined]
