"""etcd-metrics probe: what each etcd member says about its own disk and raft, from its Prometheus
`/metrics`, every second by default (one thread per member, so a member stuck in a slow sync delays only
its own samples), plus the cluster's active alarms.

Sample `etcd-metrics/<member>` (cumulative, as etcd counts them since it started; a restart resets them):
- `wal_fsync`, `backend_commit`: the histograms `etcd_disk_wal_fsync_duration_seconds` (one fdatasync of
  the write-ahead log per batch of raft entries) and `etcd_disk_backend_commit_duration_seconds` (one bbolt
  commit), each `{"buckets": [[le, count], …], "sum": seconds, "count": n}`;
- `leader_changes`, `proposals_failed`, `proposals_pending`, `proposals_committed`, `slow_applies`,
  `heartbeat_failures`, `has_leader`, and `db_size`, `db_in_use`, `quota` in bytes;
- `reachable`, `error` (when `/metrics` did not answer within the timeout).

Sample `etcd-metrics/alarms`: `alarms` (list of `[member, NOSPACE|CORRUPT]`), `ok`, asked of the first
member that answers. What the measurements make of these (`etcdFsyncP99`, `nospaceAlarm` …) is in
`chaoslab.judge.storage` and docs/measurements.md; the names are `chaoslab.clients.etcd.parse_metrics`'s.

Load: one `/metrics` GET per member per interval (a few hundred lines each) and one Alarm RPC.
"""

from __future__ import annotations

from typing import Any

import requests

from chaoslab.clients.etcd import EtcdMember, RpcError, parse_metrics
from chaoslab.probes.base import MemberSampler


class EtcdMetricsProbe(MemberSampler):
    kind = "etcd-metrics"
    interval = 1.0

    def start(self) -> None:
        # A timeout below the interval: a member that hangs costs its own samples, not the others'.
        self.members = self.target.etcd_members(timeout=max(0.5, 0.8 * self.interval))
        for name, member in self.members.items():
            self._spawn(lambda m=member, n=name: self._member_loop(n, m), f"etcd-metrics-{name}")
        self._spawn(self._alarm_loop, "etcd-metrics-alarms")

    def _every(self, once: Any) -> None:
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            once()
            next_at += self.interval
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    def _member_loop(self, name: str, member: EtcdMember) -> None:
        def once() -> None:
            t = self.timeline.now()
            try:
                values = parse_metrics(member.metrics())
            except (requests.RequestException, ValueError) as exc:
                if not self.stopped.is_set():
                    self.timeline.sample("etcd-metrics", name, t=t, reachable=False, error=type(exc).__name__)
                return
            self.timeline.sample("etcd-metrics", name, t=t, reachable=True, error=None, **values)
        self._every(once)

    def _alarm_loop(self) -> None:
        def once() -> None:
            t = self.timeline.now()
            for member in self.members.values():
                try:
                    alarms = member.alarms()
                except RpcError:
                    continue
                self.timeline.sample("etcd-metrics", "alarms", t=t, ok=True, alarms=[list(a) for a in alarms])
                return
            if not self.stopped.is_set():
                self.timeline.sample("etcd-metrics", "alarms", t=t, ok=False, alarms=[])
        self._every(once)

    @property
    def requests_per_second(self) -> float:
        return (len(self.target.hosts("etcd")) + 1) / self.interval
