"""node-lease probe: watches the node heartbeats, the Leases in `kube-node-lease` that every kubelet renews
(every quarter of its lease duration; 10 s by default), and records each renewal as it arrives, like the
`lease` probe does for the leader-election Leases. `nodeLeaseRenewalGap` (chaoslab.judge.measure) is the
longest time a node went without one while a fault held: past `--node-monitor-grace-period` (40 s by
default) the node-lifecycle controller marks the node NotReady, which is what an overload that starves
node heartbeats costs. Load: one watch, renewed every 5 s."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from chaoslab.errors import TargetError
from chaoslab.probes.base import Sampler

PROBE = "node-lease"
PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
WATCH_SECONDS = 5
STALL_SECONDS = 2.0


class NodeLeaseProbe(Sampler):
    kind = PROBE

    def _record(self, lease: Mapping[str, Any]) -> None:
        spec = lease.get("spec", {})
        self.timeline.sample(PROBE, lease["metadata"]["name"], holder=spec.get("holderIdentity"),
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
                for event in api.watch(PATH, resource_version=version, timeout_seconds=WATCH_SECONDS,
                                       silence=WATCH_SECONDS + STALL_SECONDS):
                    if self.stopped.is_set():
                        return
                    if event["type"] == "ERROR":
                        version = None  # 410 Gone: relist
                        break
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(obj)
            except TargetError:
                self.stopped.wait(0.2)
                version = None
            except (KeyError, ValueError):
                time.sleep(0.2)
                version = None

    @property
    def requests_per_second(self) -> float:
        return 0.2
