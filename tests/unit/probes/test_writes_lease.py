"""The write workload's lease, with a fake etcd client (the real one is exercised on the lab in
tests/integration/test_partition.py): keys ride the lease, it is renewed off the write path, and a lease
that is gone makes the read-back "not measured" instead of reporting every key as lost."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import fakes

from chaoslab.probes.writes import WritesProbe
from chaoslab.timeline import Timeline


@dataclass
class FakeClient:
    ttl_answer: int = 60
    keys: dict[str, tuple[str, int]] = field(default_factory=dict)
    renewals: int = 0
    revoked: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.transactions = SimpleNamespace(put=lambda key, value, lease=None: (key, value, lease))

    def lease(self, ttl: int) -> Any:
        return SimpleNamespace(id=0xabc)

    def refresh_lease(self, lease: int) -> Any:
        self.renewals += 1
        yield SimpleNamespace(TTL=self.ttl_answer)

    def revoke_lease(self, lease: int) -> None:
        self.revoked.append(lease)

    def transaction(self, compare: list[Any], success: list[tuple[str, str, int]], failure: list[Any]) -> None:
        with self.lock:
            for key, value, lease in success:
                self.keys[key] = (value, lease)

    def get(self, key: str, serializable: bool = False) -> tuple[bytes | None, None]:
        with self.lock:
            found = self.keys.get(key)
        return (found[0].encode() if found else None), None

    def get_prefix(self, prefix: str) -> list[tuple[bytes, Any]]:
        with self.lock:
            return [(v.encode(), SimpleNamespace(key=k.encode())) for k, (v, _) in self.keys.items()
                    if k.startswith(prefix)]

    def delete_prefix(self, prefix: str) -> None:
        with self.lock:
            for k in [k for k in self.keys if k.startswith(prefix)]:
                del self.keys[k]


class FakeTarget(fakes.FakeTarget):
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def etcd_members(self, timeout: float = 1.0) -> dict[str, Any]:
        return {"cp1": SimpleNamespace(client=self.client, close=lambda: None)}

    def hosts(self, component: str) -> list[str]:
        return ["cp1"]


def run_probe(client: FakeClient, ttl: int, seconds: float) -> Timeline:
    timeline = Timeline.start()
    probe = WritesProbe(FakeTarget(client), timeline)  # type: ignore[arg-type]
    probe.ttl = ttl
    probe.start()
    time.sleep(seconds)
    probe.stop()
    return timeline


def test_keys_ride_the_lease_which_is_renewed_and_revoked_at_the_end() -> None:
    client = FakeClient()
    timeline = run_probe(client, ttl=1, seconds=0.5)
    puts = [s for s in timeline.samples if s.subject == "put"]
    assert puts and all(s.values["ok"] for s in puts)
    assert client.renewals >= 3  # every tenth of the TTL
    assert client.revoked == [0xabc] and not client.keys
    [verify] = [s for s in timeline.samples if s.subject == "verify"]
    assert verify.values["ok"] and verify.values["lost"] == 0
    assert not [s for s in timeline.samples if s.subject == "lease"]


def test_a_lease_that_is_gone_makes_the_read_back_not_measured_not_lost() -> None:
    client = FakeClient(ttl_answer=0)  # etcd's answer to a renewal of a lease it no longer has
    timeline = run_probe(client, ttl=1, seconds=0.4)
    [lease] = [s for s in timeline.samples if s.subject == "lease"]
    assert not lease.values["ok"] and "expired or was revoked" in lease.values["error"]
    [verify] = [s for s in timeline.samples if s.subject == "verify"]
    assert not verify.values["ok"] and verify.values["lost"] is None
    assert verify.values["error"] == lease.values["error"]
    assert client.revoked == []
