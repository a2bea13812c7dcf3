"""Talking to etcd members: who a member is, whom it follows, its raft term and index.

Used by `chaoslab lab status` and by the etcd probe. Wraps python-etcd3 0.12, with two deliberate choices:

- etcd3 0.12 ships protobuf code generated for protobuf 3; protobuf >= 4.21 refuses it at import. The
  package pins protobuf < 4, and this module also selects the pure-python protobuf implementation before
  the import, so a newer protobuf pulled in by something else still works (slower, correct).
- `Etcd3Client.status()` hides `header.member_id` (needed to know whether the answering member is the
  leader) and calls MemberList on every call. We call the raw `Status` RPC and keep the member list.

    >>> member = EtcdMember("cp1", "127.0.0.1", 16461, tls)           # doctest: +SKIP
    >>> member.status().leader_name                                     # doctest: +SKIP
    'cp2'
"""

from __future__ import annotations

import os

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import etcd3
import grpc
import requests
from etcd3 import etcdrpc
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Tls:
    """Client TLS material for etcd (CA, client certificate and key)."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class MemberStatus:
    """One member's answer to the Status RPC. `leader_id` is 0 while the member knows no leader."""

    member_id: int
    leader_id: int
    term: int
    index: int
    leader_name: str | None
    name: str | None

    @property
    def is_leader(self) -> bool:
        return self.leader_id != 0 and self.leader_id == self.member_id


class EtcdMember:
    """A client bound to one member's endpoint (no load balancing: we want *this* member's view)."""

    def __init__(self, name: str, host: str, port: int, tls: Tls, timeout: float = 1.0) -> None:
        self.name = name
        self.timeout = timeout
        self.address, self.port, self.tls = host, port, tls
        self.client = etcd3.client(host=host, port=port, ca_cert=str(tls.ca), cert_cert=str(tls.cert),
                                   cert_key=str(tls.key), timeout=timeout)
        self._names: dict[int, str] = {}

    def names(self, refresh: bool = False) -> dict[int, str]:
        """Member id → name, from MemberList (cached; membership rarely changes)."""
        if refresh or not self._names:
            resp = self.client.clusterstub.MemberList(etcdrpc.MemberListRequest(), self.timeout)
            self._names = {m.ID: m.name for m in resp.members}
        return self._names

    def status(self) -> MemberStatus:
        """Raises `grpc.RpcError` when the member does not answer within the timeout."""
        resp = self.client.maintenancestub.Status(etcdrpc.StatusRequest(), self.timeout)
        names = self.names()
        if resp.leader and resp.leader not in names:
            names = self.names(refresh=True)
        return MemberStatus(
            member_id=resp.header.member_id,
            leader_id=resp.leader,
            term=resp.raftTerm,
            index=resp.raftIndex,
            leader_name=names.get(resp.leader),
            name=names.get(resp.header.member_id),
        )

    def metrics(self) -> str:
        """The member's Prometheus `/metrics` text, from its client URL with the client certificate (etcd
        serves it there; `--listen-metrics-urls` is only an extra, plain-HTTP listener). Raises
        `requests.RequestException` when it does not answer within the timeout."""
        resp = requests.get(f"https://{self.address}:{self.port}/metrics", timeout=self.timeout,
                            cert=(str(self.tls.cert), str(self.tls.key)), verify=str(self.tls.ca))
        resp.raise_for_status()
        return resp.text

    def alarms(self) -> list[tuple[str, str]]:
        """The cluster's active alarms as (member name, alarm: NOSPACE or CORRUPT); raises `grpc.RpcError`."""
        resp = self.client.maintenancestub.Alarm(
            etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET, memberID=0, alarm=etcdrpc.NONE), self.timeout)
        names = self.names()
        return [(names.get(a.memberID, f"{a.memberID:x}"), etcdrpc.AlarmType.Name(a.alarm)) for a in resp.alarms]

    def close(self) -> None:
        self.client.close()


HISTOGRAMS = {"wal_fsync": "etcd_disk_wal_fsync_duration_seconds",
              "backend_commit": "etcd_disk_backend_commit_duration_seconds"}
VALUES = {"leader_changes": "etcd_server_leader_changes_seen_total",
          "proposals_failed": "etcd_server_proposals_failed_total",
          "proposals_pending": "etcd_server_proposals_pending",
          "proposals_committed": "etcd_server_proposals_committed_total",
          "slow_applies": "etcd_server_slow_apply_total",
          "heartbeat_failures": "etcd_server_heartbeat_send_failures_total",
          "has_leader": "etcd_server_has_leader",
          "db_size": "etcd_mvcc_db_total_size_in_bytes",
          "db_in_use": "etcd_mvcc_db_total_size_in_use_in_bytes",
          "quota": "etcd_server_quota_backend_bytes"}


def parse_metrics(text: str) -> dict[str, Any]:
    """The sample values from a member's `/metrics` text (the names above; missing ones are left out).

        >>> parse_metrics('etcd_server_has_leader 1\\n')["has_leader"]
        1.0
    """
    wanted = {v: k for k, v in VALUES.items()}
    histograms = {v: k for k, v in HISTOGRAMS.items()}
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in wanted and not s.labels:
                out[wanted[s.name]] = s.value
            elif family.name in histograms:
                h = out.setdefault(histograms[family.name], {"buckets": [], "sum": 0.0, "count": 0.0})
                if s.name.endswith("_bucket"):
                    h["buckets"].append([float(s.labels["le"]), s.value])
                elif s.name.endswith("_sum"):
                    h["sum"] = s.value
                elif s.name.endswith("_count"):
                    h["count"] = s.value
    return out


RpcError = grpc.RpcError


def error_name(exc: BaseException) -> str:
    """A failed call's gRPC status (DEADLINE_EXCEEDED, UNAVAILABLE...), or the exception's type for an error
    raised without a status (a closed client, etcd3's own exceptions)."""
    return exc.code().name if isinstance(exc, grpc.Call) else type(exc).__name__


def error_text(exc: BaseException) -> str:
    """`error_name`, with the details the server gave, if any."""
    details = exc.details() if isinstance(exc, grpc.Call) else None
    return f"{error_name(exc)}: {details}" if details else error_name(exc)
