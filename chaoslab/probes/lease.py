"""Lease probe: watches the leader-election Leases of kube-scheduler and kube-controller-manager and
records each change as it arrives (push, so a change is seen within a network round trip, far inside
100 ms). Samples are timestamped on arrival, never from `renewTime`, which is the holder's clock.
A new `renew` value is a renewal observed; a holder that stops renewing is how a hard kill looks.

A watch shows a change late and cannot prove that the old holder still held the Lease at any moment, so
alone it brackets a takeover from the injection on. While a takeover is expected (after an inject event
whose component is one of the watched Leases' owners, until its holder changes or `expect_window` passes)
the probe also reads the Leases every `read_interval` (100 ms: one quorum LIST of kube-system Leases, about
10 requests/s, only then); each read is a sample with `via: "list"` and its `rtt`, and bounds the takeover
from below (`chaoslab.judge.measure`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chaoslab.clients.leaders import LEASES, holder_host
from chaoslab.errors import TargetError
from chaoslab.probes.base import Sampler, list_then_watch
from chaoslab.timeline import Timeline

PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


def expected_takeovers(timeline: Timeline, names: tuple[str, ...], now: float, window: float) -> list[str]:
    """The Leases whose takeover is expected at `now`: a fault was injected into their owner (the inject
    event's `component`) less than `window` seconds ago, and no new holder has been seen since."""
    out = []
    for e in timeline.events_of("inject"):
        lease = LEASES.get(str(e.detail.get("component")))
        if lease is None or lease not in names or not 0 <= now - e.t < window:
            continue
        before = [s.values.get("identity") for s in timeline.samples_of("lease", lease) if s.t <= e.t]
        after = {s.values.get("identity") for s in timeline.samples_of("lease", lease) if s.t > e.t}
        if not (after - {None, before[-1] if before else None}):
            out.append(lease)
    return sorted(set(out))


class LeaseProbe(Sampler):
    kind = "lease"
    params = ("names",)
    read_interval = 0.1
    """Seconds between reads of the Leases while a takeover is expected."""
    expect_window = 45.0
    """Seconds after an injection into a Lease's owner during which its takeover is expected (client-go
    takes over 13–24 s after a hard kill with the default 15 s lease)."""

    def __init__(self, *args: Any, names: Sequence[str] = tuple(LEASES.values()), **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.names = tuple(names)

    def start(self) -> None:
        self._spawn(self.loop, self.kind)
        self._spawn(self._read_loop, f"{self.kind}-reads")

    def _record(self, lease: Mapping[str, Any], **read: Any) -> None:
        name = lease["metadata"]["name"]
        if name not in self.names:
            return
        spec = lease.get("spec", {})
        identity = spec.get("holderIdentity") or None
        self.timeline.sample("lease", name, holder=holder_host(identity), identity=identity,
                             renew=spec.get("renewTime"), duration=spec.get("leaseDurationSeconds"),
                             acquire=spec.get("acquireTime"), **read)

    def _read_loop(self) -> None:
        """Quorum reads of the Leases while a takeover is expected; nothing otherwise."""
        api = self.target.api()
        while not self.stopped.is_set():
            t = self.timeline.now()
            if not expected_takeovers(self.timeline, self.names, t, self.expect_window):
                self.stopped.wait(self.read_interval)
                continue
            try:
                listing = api.get(PATH)
                rtt = round(self.timeline.now() - t, 4)
                for lease in listing.get("items", []):
                    self._record(lease, t=t, via="list", rtt=rtt)
            except (TargetError, KeyError, ValueError):
                pass  # the API may be what the fault took away; the watch and the next read go on
            self.stopped.wait(max(0.0, t + self.read_interval - self.timeline.now()))

    def loop(self) -> None:
        list_then_watch(self, PATH, self._record)

    @property
    def requests_per_second(self) -> float:
        return 0.2  # one watch, renewed every 5 s

    @property
    def peak_requests_per_second(self) -> float:
        """While a takeover is expected: the watch and the reads."""
        return 0.2 + 1 / self.read_interval
