"""etcd probe: every member's own view (reachable, leader, raft term, index), one thread per member so a
member that hangs does not delay the others' samples.

Paced (`chaoslab.probes.pace`): every `interval` (100 ms by default) while all is quiet, every
`fast_interval` (10 ms) for `expect_window` seconds after each inject or revert event on the timeline (but
faults into kube-scheduler, kube-controller-manager or nodes: they change nothing in etcd) and
while the probe itself sees trouble (members naming different leaders or terms, a member not answering).
An election is known only to lie between two samples of the new leader, so the fast pace is what bounds
the bracket of `etcdTimeToNewLeader`; the slow pace keeps the load small the rest of the time. Each sample
records `rtt`, the request's round trip: the state it shows held at some moment in [t, t + rtt].

Load: one Status RPC (a few hundred bytes, answered from memory) per member per sample: 10/s per member when
quiet, at most 100/s per member while a change is expected (`requests_per_second`,
`peak_requests_per_second`), never more than `IN_FLIGHT` (3) in flight to one member: a request that
stalls does not hold back the next sample, and a member that stalls every request gets no more.
"""

from __future__ import annotations

import threading

from chaoslab.clients.etcd import EtcdMember, RpcError, error_name
from chaoslab.probes.base import MemberSampler
from chaoslab.probes.pace import LEADER_ELECTED, Pace, expect_times

IN_FLIGHT = 3
"""Most requests in flight to one member at once."""


class EtcdProbe(MemberSampler):
    kind = "etcd"
    interval = 0.1
    fast_interval = 0.01
    """Seconds between samples of a member while a change is expected."""
    expect_window = 5.0
    """Seconds after an inject or revert event during which a change is expected."""
    request_timeout = 1.0
    """Seconds before an unanswered Status request counts as the member unreachable."""

    def start(self) -> None:
        # Requests run on a pool (a slow one does not delay the next sample), so the deadline can be generous:
        # a busy machine that answers in 0.4 s has not lost the member (a killed member refuses at once).
        self.members = self.target.etcd_members(timeout=self.request_timeout)
        self.pace = Pace(self.interval, min(self.fast_interval, self.interval), self.expect_window)
        self._views: dict[str, tuple[bool, str | None, int | None]] = {}
        self._sent: dict[str, float] = {}
        self._views_lock = threading.Lock()
        for name, member in self.members.items():
            self._spawn(lambda m=member, n=name: self._member_loop(n, m), f"etcd-{name}")

    def _trouble(self) -> bool:
        """Members disagree (leader or term) or one does not answer: a change may be under way."""
        with self._views_lock:
            views = list(self._views.values())
        return any(not ok for ok, _, _ in views) or len({(leader, term) for _, leader, term in views}) > 1

    def _member_loop(self, name: str, member: EtcdMember) -> None:
        """One request per tick of the current pace, `IN_FLIGHT` at most (`Sampler.paced`): a request that
        stalls (etcd answers Status late while its raft loop is busy, e.g. persisting a campaign) does not
        hold back the next sample, and a member that stalls every request gets no more."""
        self.paced(f"etcd-{name}", lambda: self._sample(name, member),
                   lambda now: self.pace.interval(now, expect_times(self.timeline, (*LEADER_ELECTED, "node")),
                                                  self._trouble()),
                   IN_FLIGHT)

    def _sample(self, name: str, member: EtcdMember) -> None:
        with self.asking() as t:
            try:
                s = member.status()
                rtt = round(self.timeline.now() - t, 4)
                self.timeline.sample("etcd", name, t=t, reachable=True, leader=s.leader_name,
                                     term=s.term, index=s.index, error=None, rtt=rtt)
                view: tuple[bool, str | None, int | None] = (True, s.leader_name, s.term)
            except RpcError as exc:
                if self.stopped.is_set():
                    return  # stop() closed the client under this request: not the member's failure
                code = error_name(exc)
                self.timeline.sample("etcd", name, t=t, reachable=False, leader=None, term=None,
                                     index=None, error=code, rtt=round(self.timeline.now() - t, 4))
                view = (False, None, None)
        with self._views_lock:
            # Answers may arrive out of order: keep the view of the latest request sent.
            if self._sent.get(name, -1.0) <= t:
                self._sent[name] = t
                self._views[name] = view

    @property
    def requests_per_second(self) -> float:
        return len(self.target.hosts("etcd")) / self.interval

    @property
    def peak_requests_per_second(self) -> float:
        """While a change is expected."""
        return len(self.target.hosts("etcd")) / min(self.fast_interval, self.interval)
