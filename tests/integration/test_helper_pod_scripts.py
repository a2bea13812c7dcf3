"""The helper pod's own program, run for real in a lab host's network namespace.

The lab's nodes are simulated (no kubelet runs containers), so a real helper pod cannot run here. What the
pod would run can: the exact `sh -c` program of its spec (`pod["spec"]["containers"][0]["command"][2]`),
started with `ip netns exec chaoslab-<lab>-cpN sh -c PROGRAM`. That is the pod's view of a node: the
host's network namespace (hostNetwork) and the machine's one PID namespace (hostPID). These tests show the
program applies the fault, undoes it after its duration, and undoes it at once on SIGTERM — what the
kubelet sends when chaoslab deletes the pod — for a partition's iptables rules and for a STOP/KILL of a
lab process. The create/wait/delete flow through the API is unit-tested with a fake API
(tests/unit/faults/test_helper_pod_flow.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from etcd_disk import wal_fsync
from waiting import renewing_holder

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.clients.leaders import holder_host
from chaoslab.faults import build, netpods
from chaoslab.faults.netrules import heal_partition, isolate, leftovers, partition_commands
from chaoslab.faults.partition import PartitionFault, PartitionParams
from chaoslab.faults.sync_tracer import attached_tracer
from chaoslab.lab.config import LabLayout
from chaoslab.targets.helperpod import MARK, HelperPodSettings, kill_script, markers, pod_manifest, script
from chaoslab.targets.lab import LabTarget


def program_of(pod: dict[str, object]) -> str:
    command = pod["spec"]["containers"][0]["command"]  # type: ignore[index]
    assert command[:2] == ["/bin/sh", "-c"]
    return str(command[2])


class Helper:
    """The pod's program running in `netns`; its standard output is what the pod's log would be."""

    def __init__(self, netns: str, program: str) -> None:
        # `ip netns exec` execs the shell: the pid is the program's own, as the container's main process.
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "sh", "-c", program], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.log: list[str] = []

    def until(self, word: str, timeout: float = 20.0) -> list[str]:
        """The marker lines up to the first starting with `word`."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line)
            if line.startswith(f"{MARK} {word}"):
                return markers("".join(self.log))
        raise AssertionError(f"no `{word}` line within {timeout:g} s; log: {''.join(self.log)}")

    def finish(self, timeout: float) -> tuple[int, list[str]]:
        out, _ = self.proc.communicate(timeout=timeout)
        self.log.append(out)
        return self.proc.returncode, markers("".join(self.log))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def helpers() -> Iterator[list[Helper]]:
    started: list[Helper] = []
    yield started
    for h in started:
        h.stop()


def rules(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "iptables", "-w", "-S"], capture_output=True, text=True,
                          check=True).stdout


def partition_program(lab: LabLayout, tag: str, duration: float) -> tuple[str, str]:
    """(netns of cp1, the helper pod's program isolating cp1 from the other hosts)."""
    target = LabTarget(lab)
    hosts = target.hosts("etcd")
    cut = isolate(target.endpoint(hosts[0]), [target.endpoint(h) for h in hosts[1:]])
    commands = partition_commands(tag, cut)[hosts[0]]
    pod = pod_manifest(f"chaoslab-part-{tag}", "node", script(commands, heal_partition(tag), duration), duration)
    return lab.host(hosts[0]).netns, program_of(pod)


@pytest.mark.parametrize("early", [False, True], ids=["after-duration", "on-term"])
def test_the_helper_script_installs_a_partition_and_removes_it(lab: LabLayout, helpers: list[Helper],
                                                                early: bool) -> None:
    tag = f"hp{uuid.uuid4().hex[:6]}"
    netns, program = partition_program(lab, tag, duration=300 if early else 3)
    try:
        helper = Helper(netns, program)
        helpers.append(helper)
        assert helper.until("applied")[-1] == "applied rc=0"
        assert leftovers(tag, rules(netns)), "the partition's chain is not installed"
        start = time.monotonic()
        if early:
            helper.proc.send_signal(signal.SIGTERM)  # what the kubelet sends when chaoslab deletes the pod
        code, lines = helper.finish(timeout=15)
        took = time.monotonic() - start
        assert code == 0, lines
        assert lines[-1] == ("undone rc=0 on TERM" if early else "undone rc=0"), lines
        assert took < (5 if early else 10), took
        assert not leftovers(tag, rules(netns)), rules(netns)
    finally:
        for c in heal_partition(tag):
            subprocess.run(["ip", "netns", "exec", netns, *c.argv], capture_output=True, check=False)


def scheduler_follower(lab: LabLayout, api: KubeApi) -> str:
    target = LabTarget(lab)
    hosts = target.hosts("kube-scheduler")
    leader = holder_host(renewing_holder(api, "kube-scheduler"))
    followers = [h for h in hosts if h != leader]
    if not followers:
        pytest.skip(f"no kube-scheduler follower (hosts {hosts}, leader {leader})")
    return followers[0]


def state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith("State:"))


@pytest.mark.parametrize("early", [False, True], ids=["after-duration", "on-term"])
def test_the_helper_script_stops_a_lab_process_and_resumes_it(lab: LabLayout, api: KubeApi, helpers: list[Helper],
                                                              early: bool) -> None:
    host = scheduler_follower(lab, api)
    target = LabTarget(lab)
    pid = target.pid("kube-scheduler", host)
    assert pid is not None
    pod = pod_manifest("chaoslab-kill-t", "node", kill_script("kube-scheduler", "STOP", 300 if early else 3), 3)
    try:
        helper = Helper(lab.host(host).netns, program_of(pod))
        helpers.append(helper)
        lines = helper.until("state")
        # The script found exactly this host's scheduler (the other hosts' share the PID namespace).
        assert f"old-pid {pid}" in lines and f"signalled STOP {pid}" in lines, lines
        assert lines[-1].startswith("state T"), lines
        assert state(pid).startswith("T")
        if early:
            helper.proc.send_signal(signal.SIGTERM)
        code, lines = helper.finish(timeout=15)
        assert code == 0, lines
        assert f"resumed {pid} rc=0" in lines, lines
        assert not state(pid).startswith("T"), state(pid)
        assert target.pid("kube-scheduler", host) == pid  # paused and resumed, not restarted
    finally:
        os.kill(pid, signal.SIGCONT)


def test_the_helper_script_reports_the_new_pid_after_a_kill(lab: LabLayout, api: KubeApi,
                                                            helpers: list[Helper]) -> None:
    host = scheduler_follower(lab, api)
    target = LabTarget(lab)
    pid = target.pid("kube-scheduler", host)
    pod = pod_manifest("chaoslab-kill-k", "node", kill_script("kube-scheduler", "KILL", 30), 30)
    helper = Helper(lab.host(host).netns, program_of(pod))
    helpers.append(helper)
    lines = helper.until("new-pid", timeout=40)
    assert f"old-pid {pid}" in lines and f"signalled KILL {pid}" in lines, lines
    assert any(x.startswith(f"gone {pid} after ") for x in lines), lines
    new = int(lines[-1].split()[1])
    assert new != pid
    # The lab's supervisor started it again; the status file catches up within its poll.
    deadline = time.monotonic() + 10
    while target.pid("kube-scheduler", host) != new and time.monotonic() < deadline:
        time.sleep(0.5)
    assert target.pid("kube-scheduler", host) == new
    helper.proc.send_signal(signal.SIGTERM)
    code, lines = helper.finish(timeout=10)
    assert code == 0 and lines[-1] == "undone rc=0 on TERM", lines


def test_a_partition_fault_runs_one_pod_program_per_host_and_each_heals_on_term(lab: LabLayout, api: KubeApi,
                                                                                helpers: list[Helper]) -> None:
    """The pods `partition` creates through a kubeconfig target with helperPod, one per host with rules, as
    `chaoslab.faults.netpods` builds them from the fault's own commands: each host's program installs that
    host's part of the cut, and the kubelet's TERM heals it."""
    target = LabTarget(lab)
    follower = scheduler_follower(lab, api)  # any host but the etcd leader would do; keep the leader's cut short
    fault = PartitionFault(PartitionParams(shape="isolate", select=f"host:{follower}", traffic="peer"), duration=300)
    inj = fault.resolve(target, 0)
    tag, hosts = inj.undo[0].params["tag"], inj.undo[0].params["hosts"]
    commands_of = fault.host_commands(target, inj)
    try:
        for h in hosts:
            pod = netpods.manifest({"name": f"chaoslab-partition-0-{h}", "node": h}, *commands_of(h), 300,
                                   HelperPodSettings())
            helper = Helper(lab.host(h).netns, program_of(pod))
            helpers.append(helper)
        for h, helper in zip(hosts, helpers):
            assert helper.until("applied")[-1] == "applied rc=0"
            assert leftovers(tag, rules(lab.host(h).netns)), h
        for helper in helpers:
            helper.proc.send_signal(signal.SIGTERM)
        for h, helper in zip(hosts, helpers):
            code, lines = helper.finish(timeout=15)
            assert code == 0 and lines[-1] == "undone rc=0 on TERM", (h, lines)
            assert not leftovers(tag, rules(lab.host(h).netns)), h
    finally:
        for h in hosts:
            for c in heal_partition(tag):
                subprocess.run(["ip", "netns", "exec", lab.host(h).netns, *c.argv], capture_output=True, check=False)


@pytest.mark.parametrize("early", [False, True], ids=["after-duration", "on-term"])
def test_the_helper_script_slows_an_etcd_members_syncs_and_detaches(lab: LabLayout, helpers: list[Helper],
                                                                    early: bool) -> None:
    """disk-latency's pod program (strace itself: the image has no chaoslab) on a follower's host."""
    target = LabTarget(lab)
    fault = build("disk-latency", {"select": "follower", "delay": "100ms"}, duration=300 if early else 9)
    host = fault.choose(target)[1][0]  # type: ignore[attr-defined]
    pid = target.pid("etcd", host)
    assert pid is not None
    helper = Helper(lab.host(host).netns, fault.pod_program())  # type: ignore[attr-defined]
    helpers.append(helper)
    lines = helper.until("traced")
    assert lines[0] == f"old-pid {pid}" and lines[-1] == f"traced {pid}", lines
    assert attached_tracer(pid)
    before = wal_fsync(target)[host]
    time.sleep(6)  # an idle lab's follower syncs a few times a second
    during = wal_fsync(target)[host]
    if early:
        helper.proc.send_signal(signal.SIGTERM)  # what the kubelet sends when chaoslab deletes the pod
    code, lines = helper.finish(timeout=30)
    assert code == 0, lines
    assert lines[-1] == ("undone rc=0 on TERM" if early else "undone rc=0"), lines
    untraced = next(x for x in lines if x.startswith("untraced"))
    assert untraced.startswith(f"untraced {pid} delayed ") and untraced.endswith(" rc=0")
    assert int(untraced.split()[3]) >= 10, untraced  # strace's own count of the syncs it delayed
    assert attached_tracer(pid) == 0
    syncs = during[1] - before[1]
    assert syncs >= 10 and 0.095 <= (during[0] - before[0]) / syncs <= 0.15, syncs  # 100 ms + the disk
