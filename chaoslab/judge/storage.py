"""Storage measurements: what a slow, stalled or full etcd disk did, from one run's timeline.

- `etcdFsyncP99`, `etcdBackendCommitP99` (s): the worst member's 99th percentile WAL fsync / backend commit
  duration while the fault held (injection → the first `etcd-metrics` sample at or after the revert), from
  etcd's own histograms (`chaoslab.probes.etcd_metrics`): the difference of the cumulative buckets, the
  quantile interpolated within its bucket as Prometheus' `histogram_quantile` does, so it is as precise
  as the bucket bounds (powers of two from 1 ms); the evidence gives the exact mean (sum ÷ count) too.
- `writeLatencyP99` (s): 99th percentile of the `writes` probe's acknowledged writes started while the
  fault held (failed writes count in `failedWrites`).
- `leaseRenewalGap` (s): for the kube-scheduler and kube-controller-manager Leases, the longest time
  between two renewals seen by the `lease` probe (any holder; up to the end of the run if none came) that
  ends after the injection. Against the renew deadline (10 s by default).
- `leaseRenewalLateness` (s): the same gap minus the normal renewal period (the median gap before injection,
  2 s by default). Against the renew deadline (10 s by default): a holder that cannot renew for that long
  gives its Lease up.
- `leaderLost` (count): Lease holder changes of kube-scheduler and kube-controller-manager after injection
  (each is a leader that lost its Lease: kube-controller-manager exits and restarts, kube-scheduler too).
- `etcdDefragPause` (s): the longest defragmentation of one member (`defrag` events of `etcd-defrag`: the
  Defragment call's duration, during which that member's backend is locked).
- `nospaceAlarm` (s): how long the NOSPACE alarm was active (`etcd-metrics/alarms`), `nospaceRecoveryTime`
  (s): from the start of the `etcd-nospace` runbook to its first successful write, with each step's time
  in the evidence (the `runbook` events of `chaoslab.faults.etcd_nospace`).

Pure functions over a `Timeline`; called by `chaoslab.judge.measure.measure`.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaoslab.timeline import Sample, Timeline

METRICS_PROBE = "etcd-metrics"
LEASES = {"kube-scheduler": "scheduler", "kube-controller-manager": "controllerManager"}
NORMAL_RENEWAL = 2.0
"""Seconds between Lease renewals assumed when the run saw fewer than two before injection (client-go's
default retry period)."""


def _ts(t: float) -> str:
    return f"t={t:.2f} s"


def quantile(buckets: Sequence[Sequence[float]], q: float) -> float | None:
    """The q-quantile of a cumulative histogram `[[le, count], …]` (ascending `le`, the last +Inf), linearly
    interpolated within its bucket (Prometheus' `histogram_quantile`); None without observations.

        >>> quantile([[0.1, 0], [0.2, 10], [float("inf"), 10]], 0.5)
        0.15
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank and count > below:
            if le == float("inf"):
                return lower
            return round(lower + (le - lower) * (rank - below) / (count - below), 6)
        lower, below = le, count
    return lower


def difference(after: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any]:
    """The observations between two samples of one cumulative histogram; `before` None, or from before a
    restart (a count that went down), counts from zero."""
    if before is None or after["count"] < before["count"]:
        return dict(after)
    old = {le: c for le, c in before["buckets"]}
    return {"buckets": [[le, c - old.get(le, 0.0)] for le, c in after["buckets"]],
            "sum": after["sum"] - before["sum"], "count": after["count"] - before["count"]}


def _slowest_bucket(buckets: Sequence[Sequence[float]]) -> str:
    """Where the slowest observation lies: `≤ LE s` of the highest bucket that gained one."""
    below = 0.0
    top = "none"
    for le, count in buckets:
        if count > below:
            top = f"> {buckets[-2][0]:g} s" if le == float("inf") else f"≤ {le:g} s"
        below = count
    return top


def _window(samples: Sequence[Sample], start: float, stop: float) -> tuple[Sample | None, Sample | None]:
    """(the last sample at or before `start`, the first at or after `stop`, else the last one)."""
    before = [s for s in samples if s.t <= start]
    after = [s for s in samples if s.t >= stop] or [s for s in samples if s.t > start][-1:]
    return (before[-1] if before else None), (after[0] if after else None)


def _histogram_p99(tl: Timeline, key: str, start: float, stop: float,
                   what: str) -> tuple[float | None, str]:
    members = sorted({s.subject for s in tl.samples_of(METRICS_PROBE)} - {"alarms"})
    worst: tuple[float, str, float, float] | None = None
    seen = []
    for member in members:
        samples = [s for s in tl.samples_of(METRICS_PROBE, member) if s.values.get(key)]
        first, last = _window(samples, start, stop)
        if last is None:
            continue
        d = difference(last.values[key], first.values[key] if first else None)
        p99 = quantile(d["buckets"], 0.99)
        if p99 is None:
            seen.append(f"{member}: none")
            continue
        mean = d["sum"] / d["count"]
        top = _slowest_bucket(d["buckets"])
        seen.append(f"{member}: p99 {p99 * 1000:.1f} ms, mean {mean * 1000:.1f} ms over {d['count']:.0f}, "
                    f"slowest {top}")
        if worst is None or p99 > worst[0]:
            worst = (p99, member, mean, d["count"])
    if worst is None:
        return None, f"not measured: no {what} observations in the {METRICS_PROBE} samples (add the probe)"
    return worst[0], (f"{what} {_ts(start)}–{_ts(stop)}, worst {worst[1]}: p99 {worst[0] * 1000:.1f} ms "
                      f"(bucket-interpolated), mean {worst[2] * 1000:.1f} ms over {worst[3]:.0f}; "
                      + "; ".join(seen))


def _write_p99(tl: Timeline, start: float, stop: float) -> tuple[float | None, str]:
    puts = [s for s in tl.samples_of("writes", "put") if start <= s.t <= stop and s.values.get("ok")]
    if not puts:
        return None, f"not measured: no acknowledged writes {_ts(start)}–{_ts(stop)} (add the writes probe)"
    seconds = sorted(float(s.values["seconds"]) for s in puts)
    p99 = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]
    slowest = max(puts, key=lambda s: float(s.values["seconds"]))
    return p99, (f"{len(seconds)} acknowledged writes {_ts(start)}–{_ts(stop)}: p50 "
                 f"{seconds[len(seconds) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, slowest "
                 f"{float(slowest.values['seconds']) * 1000:.0f} ms at {_ts(slowest.t)}")


def _renewals(samples: Sequence[Sample]) -> list[float]:
    """Times a new renewal (holder or renewTime changed) was seen."""
    out, last = [], None
    for s in samples:
        key = (s.values.get("identity"), s.values.get("renew"))
        if key[0] and key != last:
            out.append(s.t)
        last = key
    return out


@dataclass(frozen=True)
class LeaseGap:
    """The longest time a leader-election Lease went without a renewal after the injection."""

    lease: str
    gap: float
    start: float
    """The renewal the gap follows."""
    stop: float
    """The next renewal, or the end of the run when none came."""
    normal: float
    """The median renewal period before the injection (the retry period when too few were seen)."""

    @property
    def late(self) -> float:
        return max(0.0, self.gap - self.normal)


def lease_gaps(tl: Timeline, inject: float, end: float) -> list[LeaseGap]:
    """For the kube-scheduler and kube-controller-manager Leases: the longest gap between two renewals
    seen (or the last renewal and the end) that ends after the injection. The one measurement behind
    leaseRenewalGap and leaseRenewalLateness."""
    out = []
    for name in LEASES:
        times = _renewals(tl.samples_of("lease", name))
        if not times:
            continue
        before = [b - a for a, b in itertools.pairwise(times) if b <= inject]
        normal = statistics.median(before) if len(before) >= 2 else NORMAL_RENEWAL
        gaps = [(b - a, a, b) for a, b in zip([*times], [*times[1:], end]) if b > inject]
        if gaps:
            gap, a, b = max(gaps)
            out.append(LeaseGap(name, gap, a, b, normal))
    return out


def _lease_metrics(tl: Timeline, inject: float, end: float, values: dict[str, float | None],
                   evidence: dict[str, str]) -> None:
    gaps = lease_gaps(tl, inject, end)
    if not gaps:
        for metric in ("leaseRenewalGap", "leaseRenewalLateness"):
            values[metric], evidence[metric] = None, "not measured: no Lease renewals seen (add the lease probe)"
        return
    notes = "; ".join(f"{g.lease}: longest {g.gap:.1f} s without a renewal ({_ts(g.start)}–{_ts(g.stop)}"
                      + (", none after it" if g.stop == end else "") + f") against a normal {g.normal:.1f} s"
                      for g in gaps)
    longest = max(gaps, key=lambda g: g.gap)
    values["leaseRenewalGap"] = round(longest.gap, 4)
    evidence["leaseRenewalGap"] = (f"longest time without a renewal: {longest.lease} Lease, {longest.gap:.2f} s "
                                   f"from {_ts(longest.start)}; {notes}")
    latest = max(gaps, key=lambda g: g.late)
    values["leaseRenewalLateness"] = round(latest.late, 4)
    evidence["leaseRenewalLateness"] = f"{latest.lease} {latest.late:.1f} s late; {notes}"


def _leader_lost(tl: Timeline, inject: float) -> tuple[float | None, str]:
    lost, seen, notes = 0, False, []
    for name in LEASES:
        samples = tl.samples_of("lease", name)
        if not samples:
            continue
        seen = True
        base = next((s.values.get("identity") for s in reversed(samples) if s.t <= inject), None)
        last = base
        for s in samples:
            ident = s.values.get("identity")
            if s.t > inject and ident and ident != last:
                if last is not None:
                    lost += 1
                    notes.append(f"{name} {str(last)[:16]} → {str(ident)[:16]} at {_ts(s.t)}")
                last = ident
    if not seen:
        return None, "not measured: no Lease samples (add the lease probe)"
    return float(lost), ("; ".join(notes) if notes else f"no Lease holder changed after injection at {_ts(inject)}")


def _nospace(tl: Timeline, values: dict[str, float | None], evidence: dict[str, str], end: float) -> None:
    alarms = tl.samples_of(METRICS_PROBE, "alarms")
    if alarms:
        raised = [s for s in alarms if s.values.get("ok") and any(a[1] == "NOSPACE" for a in s.values["alarms"])]
        total, since = 0.0, None
        for a, b in zip(alarms, [*alarms[1:], None]):
            on = a in raised
            nxt = b.t if b is not None else end
            if on:
                total += nxt - a.t
                since = a.t if since is None else since
        values["nospaceAlarm"] = round(total, 4)
        evidence["nospaceAlarm"] = (f"NOSPACE active {total:.1f} s, first seen {_ts(since)}" if since is not None
                                    else f"no NOSPACE alarm in {len(alarms)} alarm samples")
    steps = tl.events_of("runbook")
    if steps:
        begin = min(e.t for e in steps if e.detail.get("step") == "start") if any(
            e.detail.get("step") == "start" for e in steps) else steps[0].t
        done = [e for e in steps if e.detail.get("step") == "first write" and e.detail.get("ok")]
        lines = [f"{e.detail.get('step')} {float(e.detail.get('seconds', 0.0)):.2f} s"
                 + ("" if e.detail.get("ok", True) else " (failed)") for e in steps if e.detail.get("step") != "start"]
        if done:
            values["nospaceRecoveryTime"] = round(done[0].t - begin, 4)
            evidence["nospaceRecoveryTime"] = (f"runbook {_ts(begin)}–{_ts(done[0].t)}: " + ", ".join(lines))
        else:
            evidence["nospaceRecoveryTime"] = "the runbook never reached a successful write: " + ", ".join(lines)


def _defrag(tl: Timeline) -> tuple[float | None, str]:
    runs = tl.events_of("defrag")
    if not runs:
        return None, "not measured: no etcd-defrag in this run"
    worst = max(runs, key=lambda e: float(e.detail.get("seconds", 0.0)))
    return float(worst.detail["seconds"]), "; ".join(
        f"{e.detail.get('member')} {float(e.detail.get('seconds', 0.0)):.2f} s at {_ts(e.t)}"
        + ("" if e.detail.get("ok") else f" (failed: {e.detail.get('error')})") for e in runs)


def measure_storage(tl: Timeline, inject: float | None, revert: float | None, end: float,
                    values: dict[str, float | None], evidence: dict[str, str]) -> None:
    """Fill the storage metrics into `values` and `evidence` (leaves the ones it cannot tell alone)."""
    _nospace(tl, values, evidence, end)
    values["etcdDefragPause"], evidence["etcdDefragPause"] = _defrag(tl)
    if inject is None:
        return
    stop = revert if revert is not None else end
    for metric, key, what in (("etcdFsyncP99", "wal_fsync", "WAL fsync"),
                              ("etcdBackendCommitP99", "backend_commit", "backend commit")):
        values[metric], evidence[metric] = _histogram_p99(tl, key, inject, stop, what)
    values["writeLatencyP99"], evidence["writeLatencyP99"] = _write_p99(tl, inject, stop)
    _lease_metrics(tl, inject, end, values, evidence)
    values["leaderLost"], evidence["leaderLost"] = _leader_lost(tl, inject)
