"""Lease probe: watches the leader-election Leases of kube-scheduler and kube-controller-manager and
records each change as it arrives (push, so a change is seen within a network round trip, far inside
100 ms). Samples are timestamped on arrival, never from `renewTime`, which is the holder's clock.
A new `renew` value is a renewal observed; a holder that stops renewing is how a hard kill looks."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from chaoslab.clients.leaders import LEASES, holder_host
from chaoslab.errors import TargetError
from chaoslab.probes.base import Sampler

PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
WATCH_SECONDS = 5
"""Server-side length of one watch (`timeoutSeconds`)."""
STALL_SECONDS = 2.0
"""Seconds past the watch's end without a byte after which its connection counts as stalled."""


class LeaseProbe(Sampler):
    kind = "lease"
    params = ("names",)

    def __init__(self, *args: Any, names: Sequence[str] = tuple(LEASES.values()), **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.names = tuple(names)

    def _record(self, lease: Mapping[str, Any]) -> None:
        name = lease["metadata"]["name"]
        if name not in self.names:
            return
        spec = lease.get("spec", {})
        identity = spec.get("holderIdentity") or None
        self.timeline.sample("lease", name, holder=holder_host(identity), identity=identity,
                             renew=spec.get("renewTime"), duration=spec.get("leaseDurationSeconds"))

    def loop(self) -> None:
        api = self.target.api()
        version: str | None = None
        while not self.stopped.is_set():
            try:
                if version is None:
                    listing = api.get(PATH)
                    for lease in listing["items"]:
                        self._record(lease)
                    version = listing["metadata"]["resourceVersion"]
                # Short server-side timeout: the loop notices `stop` within seconds even on a quiet watch.
                # A watch silent for longer is stalled, e.g. on an apiserver a partition cut off from its
                # clients: give it up and list again through the load balancer, or every change seen
                # until the partition heals would be seen late.
                for event in api.watch(PATH, resource_version=version, timeout_seconds=WATCH_SECONDS,
                                       silence=WATCH_SECONDS + STALL_SECONDS):
                    if self.stopped.is_set():
                        return
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        version = None  # 410 Gone: too old; relist
                        break
                    version = obj["metadata"].get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(obj)
            except TargetError:
                # The API is down (that may be the fault); keep trying without hammering it.
                self.stopped.wait(0.2)
                version = None
            except (KeyError, ValueError):
                time.sleep(0.2)
                version = None

    @property
    def requests_per_second(self) -> float:
        return 0.2  # one watch, renewed every 5 s
