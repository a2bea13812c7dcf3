"""etcd probe: every member's own view (reachable, leader, raft term, index) every 100 ms by default,
one thread per member so a member that hangs does not delay the others' samples."""

from __future__ import annotations

from chaoslab.clients.etcd import EtcdMember, RpcError
from chaoslab.probes.base import Sampler


class EtcdProbe(Sampler):
    kind = "etcd"
    interval = 0.1

    def start(self) -> None:
        # A short RPC timeout keeps a dead member from stretching its own sampling period much.
        self.members = self.target.etcd_members(timeout=max(0.2, 2 * self.interval))
        for name, member in self.members.items():
            self._spawn(lambda m=member, n=name: self._member_loop(n, m), f"etcd-{name}")

    def _member_loop(self, name: str, member: EtcdMember) -> None:
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            t = self.timeline.now()
            try:
                s = member.status()
                self.timeline.sample("etcd", name, t=t, reachable=True, leader=s.leader_name,
                                     term=s.term, index=s.index, error=None)
            except RpcError as exc:
                if self.stopped.is_set():
                    break  # stop() closed the client under this request: not the member's failure
                code = exc.code().name if hasattr(exc, "code") else type(exc).__name__
                self.timeline.sample("etcd", name, t=t, reachable=False, leader=None, term=None, index=None,
                                     error=code)
            next_at += self.interval
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    def close(self) -> None:
        for m in getattr(self, "members", {}).values():
            m.close()

    @property
    def requests_per_second(self) -> float:
        return len(self.target.hosts("etcd")) / self.interval
