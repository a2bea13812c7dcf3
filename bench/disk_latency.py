"""Benchmark: injected fsync latency on the etcd leader against what the control plane does — the table an
SRE needs to size disks and timeouts.

For each delay (0 = no fault), on a running lab: wait until it is settled, start the probes (etcd status,
Leases, apiserver readiness, etcd-metrics, the etcd write workload), hold `disk-latency` on the etcd leader
for `--seconds`, revert, observe 10 s more, and measure the timeline as a run would: etcd's own WAL fsync
p99 on the leader, how many of the workload's writes were acknowledged (its client gives up after 1 s) and
their latency p50/p99, etcd elections, scheduler and
controller-manager Leases lost, the longest Lease renewal gap. Prints a Markdown table with the lab's etcd
timings. Run it once per timing (`chaoslab lab up --heartbeat-interval 250 --election-timeout 2500` …):

    python bench/disk_latency.py --lab NAME [--delays 0,10,50,100,200,500,1000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from chaoslab.clients.leaders import current_etcd_leader
from chaoslab.faults import build
from chaoslab.faults.base import apply_undo
from chaoslab.judge.measure import measure
from chaoslab.probes import ProbeGroup
from chaoslab.targets.lab import LabTarget
from chaoslab.timeline import Timeline

PROBES: list[dict[str, Any]] = [{"kind": "etcd", "interval": 0.1}, {"kind": "lease"},
                                {"kind": "apiserver", "interval": 0.25}, {"kind": "etcd-metrics", "interval": 1.0},
                                {"kind": "writes", "interval": 0.1}]
STEADY = ("apiserver-ready", "etcd-quorum", "scheduler-leader", "controller-manager-leader")


def settled(target: LabTarget, timeout: float = 120) -> None:
    """Until etcd has a leader, the apiserver is ready and both Leases are held (then 5 s more)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ready(target):
            time.sleep(5)
            return
        time.sleep(1)
    raise SystemExit("the lab did not settle")


def _ready(target: LabTarget) -> bool:
    try:
        if not current_etcd_leader(target) or target.api().request("GET", "/readyz", timeout=3).status_code != 200:
            return False
        leases = target.api().get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases")["items"]
    except Exception:  # noqa: BLE001 - not settled yet, whatever the reason
        return False
    held = {lease["metadata"]["name"] for lease in leases if lease["spec"].get("holderIdentity")}
    return {"kube-scheduler", "kube-controller-manager"} <= held


def trial(target: LabTarget, delay_ms: int, seconds: float) -> dict[str, Any]:
    settled(target)
    timeline = Timeline.start()
    group = ProbeGroup.start(PROBES, target, timeline)
    injection = None
    try:
        time.sleep(3)
        if delay_ms:
            fault = build("disk-latency", {"select": "leader", "delay": f"{delay_ms}ms"}, duration=seconds)
            injection = fault.resolve(target, 0)
            timeline.event("inject", fault="disk-latency", index=0, targets=list(injection.targets),
                           component="etcd", role="leader")
            fault.inject(target, injection, record=timeline.event)
        else:
            timeline.event("inject", fault="none", index=0, targets=[], component="etcd", role="none")
        time.sleep(seconds)
        if injection is not None:
            for undo in injection.undo:
                apply_undo(target, undo)
            injection = None
        timeline.event("revert", fault="disk-latency", index=0, ok=True, error=None)
        time.sleep(10)
    finally:
        if injection is not None:
            for undo in injection.undo:
                apply_undo(target, undo)
        group.stop()
    m = measure(timeline, STEADY, settle=5.0, renewal_window=target.renewal_window)
    sent = [s for s in timeline.samples_of("writes", "put")
            if m.inject is not None and m.revert is not None and m.inject <= s.t <= m.revert]
    acked = [float(s.values["seconds"]) for s in sent if s.values.get("ok")]
    return {**m.values, "writeLatencyP50": statistics.median(acked) if acked else None, "sent": len(sent),
            "acked": len(acked)}


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", default="lab")
    ap.add_argument("--delays", default="0,10,50,100,200,500,1000")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    target = LabTarget.running(args.lab)
    t = target.layout.config.etcd
    print(f"etcd heartbeat {t.heartbeat_ms} ms, election timeout {t.election_ms} ms; "
          f"{args.seconds:g} s of disk-latency on the leader per row", flush=True)
    print("| injected | leader WAL fsync p99 (ms) | writes acknowledged / sent | write p50 (ms) | write p99 (ms) "
          "| etcd elections | Leases lost | longest renewal gap beyond normal (s) |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for delay in (int(d) for d in args.delays.split(",")):
        v = trial(target, delay, args.seconds)
        print(f"| {delay} ms | {ms(v['etcdFsyncP99'])} | {v['acked']} / {v['sent']} | {ms(v['writeLatencyP50'])} "
              f"| {ms(v['writeLatencyP99'])} | {v['etcdLeaderElections']:.0f} | {v['leaderLost']:.0f} "
              f"| {v['leaseRenewalLateness']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
