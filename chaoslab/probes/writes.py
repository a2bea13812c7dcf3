"""Data-safety probe: an etcd write workload that records every acknowledged write and, once the run is
over, reads every one back; plus serializable reads on every member, to catch stale reads on a side that
lost its leader.

- Writes: every `interval` (100 ms: 10 writes/s) one transaction puts `PREFIX/<run>/<seq>` = seq and
  `PREFIX/<run>/latest` = seq, through one member; a failed write moves the workload to the next member
  (as a client with several endpoints does). Sample `writes/put`: ok, seq, member, error, seconds.
- Reads: every `read_interval` (250 ms) each member is asked, serializably (its own copy, no quorum),
  for `latest`. A value lower than the highest seq acknowledged *before the read was sent* is a stale
  read. Sample `writes/read-<member>`: ok, value, acked, stale.
- Verify: when the probe stops (after revert and recovery), one linearizable range read of the run's
  prefix must return every acknowledged key with its value. Sample `writes/verify`: acked, lost,
  lost_keys (the first ten), then the prefix is deleted.
- Lease: the keys are attached to an etcd lease of `KEYS_TTL` (an hour, renewed every six minutes while
  the run lasts, revoked at its end), so the keys of a run killed outright (SIGKILL, no cleanup) are
  deleted by etcd itself, not left behind. An election does not shorten a lease. Sample `writes/lease`
  only when something is wrong: no member granted one (keys without a lease), or the lease is gone (TTL
  <= 0: then the keys went with it, so the read-back is not judged and no read counts as stale).

Load: 10 transactions/s, members ÷ 250 ms serializable reads (3 members: 12/s), one range read at the end.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from etcd3.exceptions import Etcd3Exception

from chaoslab.clients.etcd import RpcError, error_name
from chaoslab.probes.base import MemberSampler

PREFIX = "/chaoslab/writes/"
KEYS_TTL = 3600
"""Seconds the workload's keys outlive a run that could not delete them."""
ERRORS = (Etcd3Exception, RpcError)
T = TypeVar("T")


class NoMemberAnswered(Exception):
    """Every member failed a call; the message names the last one and its error."""


class WritesProbe(MemberSampler):
    kind = "writes"
    interval = 0.1
    read_interval = 0.25
    ttl = KEYS_TTL

    def start(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.root = f"{PREFIX}{self.run}/"
        self.members = self.target.etcd_members(timeout=1.0)
        self.order = sorted(self.members)
        self.acked: dict[str, str] = {}
        self.seq = 0
        """The last write attempted."""
        self.current = 0
        """Index into `order` of the member the workload writes through; a failed write moves it on."""
        self.highest = 0
        self.lock = threading.Lock()
        self.lease_lost: str | None = None
        """Why the keys' lease is gone (then the keys are too: read-back and stale reads are not judged)."""
        self.lease = self._grant()
        self._spawn(self.loop, "writes")
        if self.lease is not None:
            self._spawn(self._keep_lease, "writes-lease")
        for name in self.order:
            self._spawn(lambda n=name: self._read_loop(n), f"writes-read-{name}")

    def _any_member(self, call: Callable[[Any], T]) -> T:
        """`call(client)` through each member in turn, until one answers."""
        problem = "no member"
        for name in self.order:
            try:
                return call(self.members[name].client)
            except ERRORS as exc:
                problem = f"{name}: {error_name(exc)}"
        raise NoMemberAnswered(problem)

    def _grant(self) -> int | None:
        """A lease for the run's keys (None: keys without one)."""
        try:
            return int(self._any_member(lambda client: client.lease(self.ttl)).id)
        except NoMemberAnswered:
            self.timeline.sample("writes", "lease", ok=False, ttl=None,
                                 error="no member granted a lease: the keys are written without one")
            return None

    def _keep_lease(self) -> None:
        """Renew the lease every tenth of its TTL, through the first member that answers (a round that
        none answers is tried again at the next). An answer of TTL <= 0: the lease is gone."""
        lease = self.lease
        assert lease is not None
        while not self.stopped.wait(self.ttl / 10):
            try:
                answers = self._any_member(lambda client: list(client.refresh_lease(lease)))
            except NoMemberAnswered:
                continue
            ttl = answers[0].TTL if answers else 0
            if ttl <= 0:
                self.lease_lost = f"lease {lease:x} of the workload's keys expired or was revoked"
                self.timeline.sample("writes", "lease", ok=False, ttl=ttl, error=self.lease_lost)
                return

    def sample_once(self) -> None:
        self.seq += 1
        seq = self.seq
        key, value = f"{self.root}{seq:08d}", str(seq)
        member = self.order[self.current % len(self.order)]
        client = self.members[member].client
        t = self.timeline.now()
        try:
            client.transaction(compare=[], success=[client.transactions.put(key, value, lease=self.lease),
                                                    client.transactions.put(f"{self.root}latest", value,
                                                                            lease=self.lease)],
                               failure=[])
        except ERRORS as exc:
            if self.stopped.is_set():
                return  # stop() closed the client under this write: not acknowledged, not a failure
            self.current += 1
            self.timeline.sample("writes", "put", t=t, ok=False, seq=seq, member=member, error=error_name(exc),
                                 seconds=round(self.timeline.now() - t, 4))
            return
        with self.lock:
            self.acked[key] = value
            self.highest = max(self.highest, seq)
        self.timeline.sample("writes", "put", t=t, ok=True, seq=seq, member=member, error=None,
                             seconds=round(self.timeline.now() - t, 4))

    def _read_loop(self, name: str) -> None:
        client = self.members[name].client
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            with self.lock:
                acked = self.highest
            t = self.timeline.now()
            try:
                value, _ = client.get(f"{self.root}latest", serializable=True)
                got = int(value) if value is not None else 0
                self.timeline.sample("writes", f"read-{name}", t=t, ok=True, value=got, acked=acked,
                                     stale=got < acked and not self.lease_lost, error=None)
            except ERRORS as exc:
                if self.stopped.is_set():
                    break
                self.timeline.sample("writes", f"read-{name}", t=t, ok=False, value=None, acked=acked,
                                     stale=False, error=error_name(exc))
            next_at += self.read_interval
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    def verify(self) -> None:
        """Read every acknowledged write back (linearizable, through any member that answers)."""
        found: dict[str, str] | None = None
        error = self.lease_lost
        if error is None:
            try:
                found = self._any_member(lambda client: {meta.key.decode(): value.decode()
                                                         for value, meta in client.get_prefix(self.root)})
            except NoMemberAnswered as exc:
                error = str(exc)
        if found is None:
            self.timeline.sample("writes", "verify", ok=False, acked=len(self.acked), lost=None, lost_keys=[],
                                 error=error)
            return
        lost = sorted(k for k, v in self.acked.items() if found.get(k) != v)
        self.timeline.sample("writes", "verify", ok=True, acked=len(self.acked), lost=len(lost),
                             lost_keys=lost[:10], error=None)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        for t in self._threads:
            t.join(timeout)
        if hasattr(self, "members"):
            self.verify()
            try:
                self._any_member(self._clean_up)
            except NoMemberAnswered:
                pass  # the lease, if any, still deletes the keys when it runs out
        self.close()

    def _clean_up(self, client: Any) -> None:
        client.delete_prefix(self.root)
        if self.lease is not None and not self.lease_lost:
            client.revoke_lease(self.lease)

    @property
    def requests_per_second(self) -> float:
        return 1 / self.interval + len(self.target.hosts("etcd")) / self.read_interval
