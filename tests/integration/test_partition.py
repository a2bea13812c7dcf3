"""Partitions on the real lab, through the CLI: each shape cuts what it says and heals without a trace, the
write workload's checker finds no loss when there is none and catches one when there is, a host cut from
everything is cut from the load balancer too, a SIGKILLed chaoslab's partition (clients included) is
healed by the dead-man's switch, and its workload keys expire with their lease."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from cli_runs import chaoslab
from waiting import eventually, renewing_holder

from chaoslab.clients.etcd import EtcdMember
from chaoslab.clients.leaders import holder_host
from chaoslab.faults.netrules import Command, wrap
from chaoslab.lab.config import LabLayout
from chaoslab.probes.base import Sampler
from chaoslab.probes.writes import ERRORS, PREFIX, WritesProbe
from chaoslab.targets.lab import LabTarget
from chaoslab.timeline import Timeline

ROOT = Path(__file__).resolve().parents[2]

EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  target: {{kind: lab, name: {lab}}}
  steadyState: [apiserver-ready, etcd-quorum]
  faults:
    - {{kind: partition, {fault}}}
  duration: {duration}
  probes: [etcd, apiserver, writes]
  slo:
    lostWrites: {{max: 0}}
    etcdLeaderElections: {{max: {elections}}}
"""


def write(tmp_path: Path, lab: LabLayout, name: str, fault: str, duration: str = "8s", elections: int = 2) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(EXPERIMENT.format(name=name, lab=lab.config.name, fault=fault, duration=duration,
                                      elections=elections))
    return path


def command(path: Path, tmp_path: Path) -> list[str]:
    return chaoslab("run", str(path), "--no-live", "--runs-dir", str(tmp_path / "runs"))


def run(path: Path, tmp_path: Path) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    proc = subprocess.run(command(path, tmp_path), capture_output=True, text=True, timeout=300, check=False,
                          cwd=ROOT)
    run_dir = max((tmp_path / "runs").iterdir())
    return proc.returncode, proc.stdout + proc.stderr, json.loads((run_dir / "verdict.json").read_text())


def chains(target: LabTarget) -> dict[str, list[str]]:
    """Every CHAOSLAB chain rule left on any lab host."""
    out = {}
    for h in target.hosts("etcd"):
        listing = target.run_commands(wrap([Command(("iptables", "-w", "-S"))], target.host_wrap(h)))[0]
        out[h] = [line for line in listing.splitlines() if "CHAOSLAB" in line]
    return out


def reachable(target: LabTarget, host: str) -> dict[str, bool]:
    """Whether `host`'s etcd member and apiserver answer through haproxy, as chaoslab's probes reach them."""
    out = {}
    member = target.etcd_members(timeout=1.5)[host]
    try:
        member.status()
        out["etcd"] = True
    except grpc.RpcError:
        out["etcd"] = False
    finally:
        member.close()
    url = target.apiserver_endpoints().get(host)
    if url:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=3, context=context) as resp:
                out["apiserver"] = resp.status == 200
        except OSError:
            out["apiserver"] = False
    return out


def wait_for_rules(target: LabTarget, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Until every host has its rules in (each host's chain, rules and hooks are one transaction): both
    callers isolate one host, which puts rules on every host."""
    deadline = time.monotonic() + 60

    def hooked(rules: list[str]) -> bool:
        return any(r.startswith("-A INPUT -j CHAOSLAB") for r in rules) and any(
            r.startswith("-A OUTPUT -j CHAOSLAB") for r in rules)

    while True:
        if all(hooked(rules) for rules in chains(target).values()):
            return
        assert time.monotonic() < deadline and proc.poll() is None, "the partition was never installed"
        time.sleep(0.1)


def value(verdict: dict, metric: str) -> float | None:  # type: ignore[type-arg]
    return verdict["runValues"][0][metric]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_leader_isolation_elects_a_new_leader_fast_and_loses_no_write(lab: LabLayout, target: LabTarget,
                                                                     tmp_path: Path) -> None:
    path = write(tmp_path, lab, "isolate-leader", "shape: isolate, select: leader, traffic: peer")
    code, out, verdict = run(path, tmp_path)
    assert code == 0, out
    # A new leader within a few election timeouts (the SLO in experiments/ says 2.5 s on a quiet lab).
    assert 0 < value(verdict, "etcdTimeToNewLeader") < 10  # type: ignore[operator]
    assert value(verdict, "lostWrites") == 0 and value(verdict, "failedWrites") is not None
    assert not any(chains(target).values())


@pytest.mark.slow
def test_a_minority_split_keeps_the_leader_and_loses_no_write(lab: LabLayout, target: LabTarget,
                                                              tmp_path: Path) -> None:
    # Without pre-vote the cut-off member's higher term may force one election when it rejoins.
    path = write(tmp_path, lab, "split-follower", "shape: split, select: follower", elections=1)
    code, out, verdict = run(path, tmp_path)
    assert code == 0, out
    assert value(verdict, "lostWrites") == 0
    assert value(verdict, "staleReads") is not None
    assert not any(chains(target).values())


@pytest.mark.slow
def test_one_way_inbound_loss_on_the_leader_forces_an_election(lab: LabLayout, target: LabTarget,
                                                              tmp_path: Path) -> None:
    # The leader still sends heartbeats but hears no acknowledgement: TCP stalls, it loses quorum.
    path = write(tmp_path, lab, "one-way-leader", "shape: one-way, select: leader, direction: inbound")
    code, out, verdict = run(path, tmp_path)
    assert value(verdict, "etcdLeaderElections"), out
    assert value(verdict, "lostWrites") == 0, out
    assert code in (0, 1), out
    assert not any(chains(target).values())


@pytest.mark.slow
def test_the_checker_catches_an_acknowledged_write_deleted_behind_its_back(lab: LabLayout, target: LabTarget,
                                                                         tmp_path: Path) -> None:
    path = write(tmp_path, lab, "lost-write", "shape: isolate, select: follower, traffic: peer", elections=1)
    members = target.etcd_members()

    def keys() -> tuple[EtcdMember, list[str]] | None:
        """The workload's keys, and the member that answered (a linearizable read: not the cut-off one)."""
        for member in members.values():
            try:
                return member, [m.key.decode() for _, m in member.client.get_prefix(PREFIX, keys_only=True)]
            except ERRORS:
                continue
        return None

    # Only this run's keys: a run killed by an earlier test (SIGKILL, no cleanup) leaves its own behind.
    first = keys()
    earlier = set(first[1]) if first else set()
    proc = subprocess.Popen(command(path, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deleted = None
        deadline = time.monotonic() + 60
        while deleted is None and time.monotonic() < deadline:
            found = keys()
            if found is not None:
                member, now = found
                acked = sorted(k for k in now if not k.endswith("/latest") and k not in earlier)
                if len(acked) > 5:
                    deleted = acked[0]
                    member.client.delete(deleted)
            time.sleep(0.2)
        assert deleted, "the workload wrote nothing"
        out = proc.communicate(timeout=300)[0].decode()
    finally:
        for m in members.values():
            m.close()
    assert proc.returncode == 1, out
    run_dir = max((tmp_path / "runs").iterdir())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    lost = next(s for s in verdict["slos"] if s["metric"] == "lostWrites")
    assert lost["measured"] == 1 and not lost["passed"] and deleted in lost["evidence"]


def test_the_workload_keys_of_a_killed_run_go_with_their_lease(lab: LabLayout, target: LabTarget) -> None:
    """A run killed outright cannot delete its keys; etcd does when their lease runs out. A run that ends
    deletes them and revokes the lease."""
    members = target.etcd_members()
    client = next(iter(members.values())).client

    def keys(probe: WritesProbe) -> list[bytes]:
        return [m.key for _, m in client.get_prefix(probe.root, keys_only=True)]

    killed, ended = WritesProbe(target, Timeline.start()), WritesProbe(target, Timeline.start())
    killed.ttl = 3
    try:
        killed.start()
        ended.start()
        eventually(lambda: len(keys(killed)) > 3 and len(keys(ended)) > 3, 20, "both workloads writing")
        Sampler.stop(killed)  # what SIGKILL leaves: no verify, no delete
        assert keys(killed)
        eventually(lambda: not keys(killed), 20, "the killed run's keys expired with their lease")
        lease = ended.lease
        assert lease is not None
        ended.stop()
        assert not keys(ended)
        assert client.get_lease_info(lease).TTL == -1  # revoked
    finally:
        Sampler.stop(killed)
        if not ended.stopped.is_set():
            ended.stop()  # deletes its keys
        for m in members.values():
            m.close()


@pytest.mark.slow
def test_a_host_cut_from_everything_is_cut_from_the_load_balancer_and_its_leases_move(
        lab: LabLayout, target: LabTarget, tmp_path: Path) -> None:
    # The scheduler's Lease holder: its apiserver loses etcd with the host, so the Lease must move.
    # A live one: a holder an earlier test left dying would hand over within seconds, not after expiry.
    host = holder_host(renewing_holder(target.api(), "kube-scheduler"))
    path = write(tmp_path, lab, "isolate-host", f"shape: isolate, select: 'host:{host}', clients: true",
                 duration="30s")
    path.write_text(path.read_text().replace("probes: [etcd, apiserver, writes]",
                                             "probes: [etcd, apiserver, writes, lease]"))
    proc = subprocess.Popen(command(path, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    wait_for_rules(target, proc)
    others = [h for h in target.hosts("etcd") if h != host]

    def others_serve() -> dict[str, dict[str, bool]] | None:
        """Every sample while the cut holds: the host is unreachable. The others serve once etcd has a
        leader among them: when the host held etcd's leadership, their apiservers are not ready (no
        quorum reads) for the election and their own health check's next pass."""
        assert proc.poll() is None, "the run ended before the other hosts served"
        assert reachable(target, host) == {"etcd": False, "apiserver": False}
        during = {h: reachable(target, h) for h in others}
        return during if all(all(r.values()) for r in during.values()) else None

    # The fault holds 30 s; an election takes a few election timeouts.
    during = eventually(others_serve, 15, "the hosts not cut serve through the load balancer")
    assert all(chains(target).values()), f"the cut ended before the other hosts served: {during}"
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, out
    verdict = json.loads((max((tmp_path / "runs").iterdir()) / "verdict.json").read_text())
    # Writes went on through the other members; none acknowledged was lost.
    assert value(verdict, "lostWrites") == 0
    # Lease duration 15 s, renew deadline 10 s: the holder gives up, a standby takes over after expiry.
    assert value(verdict, "schedulerLeaderElections") == 1, out
    assert 10 < value(verdict, "schedulerTimeToNewLeader") < 30  # type: ignore[operator]
    assert not any(chains(target).values())
    assert reachable(target, host) == {"etcd": True, "apiserver": True}


@pytest.mark.slow
def test_the_dead_mans_switch_heals_a_partition_after_chaoslab_is_killed(lab: LabLayout, target: LabTarget,
                                                                       tmp_path: Path) -> None:
    path = write(tmp_path, lab, "killed-mid-partition", "shape: isolate, select: follower, deadman: 5, "
                 "clients: true", duration="5s")
    proc = subprocess.Popen(command(path, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
                            start_new_session=True)
    wait_for_rules(target, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    cut = [h for h, rules in chains(target).items() if any(f"-s {lab.client_address}/32" in r for r in rules)]
    assert len(cut) == 1 and not reachable(target, cut[0])["etcd"]
    # duration 5 s + deadman 5 s after injection; allow for the time since.
    deadline = time.monotonic() + 20
    while any(chains(target).values()):
        assert time.monotonic() < deadline, f"still partitioned: {chains(target)}"
        time.sleep(0.5)
    assert all(reachable(target, h)["etcd"] for h in target.hosts("etcd"))
    # The run directory still names the undo: `chaoslab recover` replays it harmlessly.
    run_dir = max((tmp_path / "runs").iterdir())
    assert (run_dir / "undo.json").exists()
    rec = subprocess.run(chaoslab("recover", str(run_dir)), capture_output=True,
                         text=True, timeout=60, check=False, cwd=ROOT)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert not (run_dir / "undo.json").exists()
