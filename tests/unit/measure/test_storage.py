"""Storage measurements from synthetic timelines: etcd histograms differenced over the fault and their p99
interpolated as Prometheus does, write latency, Lease renewal lateness, leaders lost, the NOSPACE alarm
and the runbook's recovery time."""

from __future__ import annotations

from typing import Any

import pytest

from chaoslab.clients.etcd import parse_metrics as parse
from chaoslab.judge.storage import difference, measure_storage, quantile

from .synthetic import build

INF = float("inf")
LES = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, INF]


def histogram(counts: dict[float, int]) -> dict[str, Any]:
    """A cumulative histogram with `counts[le]` observations in the bucket ending at `le` (each at le)."""
    total, buckets, s = 0, [], 0.0
    for le in LES:
        total += counts.get(le, 0)
        s += counts.get(le, 0) * (le if le != INF else 10)
        buckets.append([le, float(total)])
    return {"buckets": buckets, "sum": s, "count": float(total)}


def test_quantile_interpolates_within_the_bucket_like_histogram_quantile() -> None:
    h = histogram({0.256: 100})
    assert quantile(h["buckets"], 0.99) == pytest.approx(0.128 + 0.128 * 0.99)
    assert quantile(histogram({})["buckets"], 0.99) is None
    assert quantile(histogram({INF: 5, 0.001: 5})["buckets"], 0.99) == 8.192  # +Inf: the last finite bound


def test_difference_counts_from_zero_after_a_restart() -> None:
    before, after = histogram({0.001: 50}), histogram({0.001: 50, 0.256: 10})
    assert difference(after, before)["count"] == 10
    assert quantile(difference(after, before)["buckets"], 0.5) == pytest.approx(0.192)
    restarted = histogram({0.001: 3})
    assert difference(restarted, before)["count"] == 3


def test_fsync_p99_is_the_worst_members_over_the_fault_and_write_latency_its_acknowledged_writes() -> None:
    records: list[Any] = [(5.0, "inject", {"fault": "disk-latency", "index": 0, "targets": ["etcd@cp2"],
                                           "component": "etcd", "role": "leader"}),
                          (15.0, "revert", {"fault": "disk-latency", "index": 0, "ok": True, "error": None})]
    for t in range(21):
        slow = max(0, min(t, 15) - 5) * 10  # cp2: 10 slow syncs a second while the fault holds
        records.append((float(t), "etcd-metrics", "cp2", {"reachable": True, "wal_fsync": histogram(
            {0.001: 100 + 10 * t, 0.256: slow}), "backend_commit": histogram({0.001: t})}))
        records.append((float(t), "etcd-metrics", "cp1", {"reachable": True, "wal_fsync": histogram(
            {0.001: 100 + 10 * t}), "backend_commit": histogram({0.001: t})}))
    records += [(5.0 + i / 10, "writes", "put", {"ok": True, "seconds": 0.3 if i < 99 else 0.9}) for i in range(100)]
    records += [(2.0, "writes", "put", {"ok": True, "seconds": 5.0}),  # before: not counted
                (7.0, "writes", "put", {"ok": False, "seconds": 9.0})]  # failed: not counted
    tl = build(records)
    values: dict[str, float | None] = {}
    evidence: dict[str, str] = {}
    measure_storage(tl, 5.0, 15.0, 20.0, values, evidence)
    assert values["etcdFsyncP99"] == pytest.approx(0.128 + 0.128 * (0.99 * 200 - 100) / 100, abs=1e-6)
    assert "worst cp2" in evidence["etcdFsyncP99"] and "cp1: p99 1.0 ms" in evidence["etcdFsyncP99"]
    assert values["etcdBackendCommitP99"] == pytest.approx(0.00099)
    assert values["writeLatencyP99"] == 0.9
    assert values["leaderLost"] is None and values["leaseRenewalLateness"] is None


def test_lease_lateness_against_the_normal_period_and_leaders_lost() -> None:
    records: list[Any] = [(10.0, "inject", {"fault": "disk-latency", "index": 0, "targets": [], "component": "etcd",
                                            "role": "all"})]
    for i, t in enumerate([0, 2, 4, 6, 8, 10, 21, 23]):  # kcm: a 11 s gap over the fault, then a new holder
        ident = "cp1_a" if t < 20 else "cp2_b"
        records.append((float(t), "lease", "kube-controller-manager", {"identity": ident, "holder": ident[:3],
                                                                       "renew": f"r{i}"}))
    for i, t in enumerate(range(0, 30, 2)):
        records.append((float(t), "lease", "kube-scheduler", {"identity": "cp3_c", "holder": "cp3", "renew": f"s{i}"}))
    values: dict[str, float | None] = {}
    evidence: dict[str, str] = {}
    measure_storage(build(records), 10.0, 20.0, 30.0, values, evidence)
    assert values["leaseRenewalLateness"] == pytest.approx(9.0)
    assert values["leaderLost"] == 1.0
    assert "kube-controller-manager cp1_a → cp2_b at t=21.00 s" in evidence["leaderLost"]


def test_nospace_alarm_time_and_runbook_recovery() -> None:
    records: list[Any] = [(float(t), "etcd-metrics", "alarms", {"ok": True, "alarms": [["cp1", "NOSPACE"]]
                                                                 if 4 <= t < 9 else []}) for t in range(12)]
    records += [(6.0, "runbook", {"step": "start", "ok": True, "seconds": 0.0}),
                (6.5, "runbook", {"step": "delete keys", "ok": True, "seconds": 0.5}),
                (7.0, "runbook", {"step": "compact", "ok": True, "seconds": 0.5}),
                (8.0, "runbook", {"step": "defragment cp1", "ok": True, "seconds": 1.0}),
                (8.2, "runbook", {"step": "alarm disarm", "ok": True, "seconds": 0.2}),
                (8.3, "runbook", {"step": "first write", "ok": True, "seconds": 0.1})]
    values: dict[str, float | None] = {}
    evidence: dict[str, str] = {}
    measure_storage(build(records), None, None, 12.0, values, evidence)
    assert values["nospaceAlarm"] == 5.0
    assert values["nospaceRecoveryTime"] == pytest.approx(2.3)
    assert "defragment cp1 1.00 s" in evidence["nospaceRecoveryTime"]


def test_parse_reads_histograms_counters_and_gauges_of_etcd_metrics() -> None:
    text = """\
# TYPE etcd_disk_wal_fsync_duration_seconds histogram
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 3
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 4
etcd_disk_wal_fsync_duration_seconds_sum 0.5
etcd_disk_wal_fsync_duration_seconds_count 4
# TYPE etcd_server_leader_changes_seen_total counter
etcd_server_leader_changes_seen_total 2
# TYPE etcd_mvcc_db_total_size_in_bytes gauge
etcd_mvcc_db_total_size_in_bytes 4096
"""
    got = parse(text)
    assert got["wal_fsync"] == {"buckets": [[0.001, 3.0], [INF, 4.0]], "sum": 0.5, "count": 4.0}
    assert got["leader_changes"] == 2.0 and got["db_size"] == 4096.0


def test_report_lanes_colour_each_scrape_interval_by_its_wal_fsync_mean() -> None:
    from chaoslab.reports.html import NOT_READY, READY, UNREACHABLE, storage_lanes

    records: list[Any] = [
        (0.0, "etcd-metrics", "cp1", {"reachable": True, "wal_fsync": histogram({0.001: 10})}),
        (1.0, "etcd-metrics", "cp1", {"reachable": True, "wal_fsync": histogram({0.001: 20})}),
        (2.0, "etcd-metrics", "cp1", {"reachable": True, "wal_fsync": histogram({0.001: 20, 0.256: 4})}),
        (3.0, "etcd-metrics", "cp1", {"reachable": False, "error": "ReadTimeout"}),
        (0.0, "etcd-metrics", "alarms", {"ok": True, "alarms": []}),
        (2.0, "etcd-metrics", "alarms", {"ok": True, "alarms": [["cp1", "NOSPACE"]]})]
    lanes = dict(storage_lanes(build(records), 4.0))
    fsync = [(a, b, fill) for a, b, fill, _, _ in lanes["etcd cp1: WAL fsync"]]
    assert fsync == [(0.0, 1.0, READY), (1.0, 2.0, NOT_READY), (2.0, 3.0, UNREACHABLE), (3.0, 4.0, "#eeeeee")]
    assert "mean 256.0 ms over 4" in lanes["etcd cp1: WAL fsync"][1][3]
    assert [(a, b, fill) for a, b, fill, _, _ in lanes["etcd NOSPACE alarm"]] == [(0.0, 2.0, READY), (2.0, 4.0, NOT_READY)]
