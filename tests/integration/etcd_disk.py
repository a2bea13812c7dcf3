"""etcd's own record of its disk, read from each member's /metrics, for the storage-fault tests."""

from __future__ import annotations

from chaoslab.clients.etcd import parse_metrics
from chaoslab.targets import Target


def wal_fsync(target: Target) -> dict[str, tuple[float, float]]:
    """Member → (sum of seconds, count) of its WAL fsync histogram now."""
    out = {}
    for name, member in target.etcd_members(timeout=3).items():
        try:
            h = parse_metrics(member.metrics())["wal_fsync"]
            out[name] = (h["sum"], h["count"])
        finally:
            member.close()
    return out
