"""Admission probe: API writes to a resource an admission webhook matches and to one it does not, side by
side, so a `webhook-outage` shows as what it does to writes: refused or slowed where it matches, nothing
elsewhere (or everything, when it matches too much).

Every `interval` (1 s) it updates two ConfigMaps (`chaoslab-admission-probe`): one in the `matched`
namespace (default `chaoslab-webhook-test`, the fault's default), one in the `unmatched` namespace (default
`chaoslab-canary`). Each update is a sample `admission/matched` or `admission/unmatched` with `ok`,
`seconds` (its latency) and `error`. A write can take the webhook's `timeoutSeconds` (30 at most) or more
(the apiserver retries a call that broke off), so each may take up to `REQUEST_TIMEOUT`, and writes are
started on schedule whether or not the previous one has answered (a pool of `REQUEST_TIMEOUT / interval`
threads per namespace): one sample per interval however slow the webhook, never a burst of catch-up
writes when it recovers. Load: two writes per interval. The ConfigMaps are created before the fault (their
namespaces too, when missing) and deleted when the probe stops.

Metrics (chaoslab.judge.measure): `matchedWriteErrorRate`, `unmatchedWriteErrorRate`, `matchedWriteLatency`,
`unmatchedWriteLatency` (p99), over the writes sent while the fault held.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import TargetError
from chaoslab.probes.base import Sampler
from chaoslab.probes.canary import NAMESPACE as CANARY_NAMESPACE
from chaoslab.probes.canary import ensure_namespace
from chaoslab.targets import Target
from chaoslab.timeline import Timeline

PROBE = "admission"
NAME = "chaoslab-admission-probe"
MATCHED = "chaoslab-webhook-test"
REQUEST_TIMEOUT = 40.0
"""Seconds a probe write may take: more than the longest webhook timeout (30 s)."""


class AdmissionProbe(Sampler):
    kind = PROBE
    interval = 1.0
    params = ("matched", "unmatched")

    def __init__(self, target: Target, timeline: Timeline, interval: float | None = None,
                 matched: str = MATCHED, unmatched: str = CANARY_NAMESPACE) -> None:
        super().__init__(target, timeline, interval)
        self.namespaces = {"matched": matched, "unmatched": unmatched}

    def start(self) -> None:
        api = self.target.api()
        for ns in self.namespaces.values():
            ensure_namespace(api, ns)
            try:
                api.create(f"/api/v1/namespaces/{ns}/configmaps", {
                    "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME}, "data": {"seq": "0"}})
            except ApiError as exc:
                if exc.status != 409:
                    raise
        for subject in self.namespaces:
            self._spawn(lambda s=subject: self.writes(s), f"{self.kind}-{subject}")

    def writes(self, subject: str) -> None:
        workers = min(64, math.ceil(REQUEST_TIMEOUT / self.interval) + 1)
        api, ns = self.target.api().with_pool(workers), self.namespaces[subject]
        seq, next_at = 0, self.timeline.now()
        with ThreadPoolExecutor(workers, thread_name_prefix=f"probe-{self.kind}-{subject}") as pool:
            while not self.stopped.is_set():
                seq += 1
                pool.submit(self.write, api, subject, ns, seq)
                next_at += self.interval
                self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    def write(self, api: KubeApi, subject: str, ns: str, seq: int) -> None:
        t = self.timeline.now()
        path = f"/api/v1/namespaces/{ns}/configmaps/{NAME}"
        try:
            resp = api.request("PATCH", path, body={"data": {"seq": str(seq)}},
                               content_type="application/merge-patch+json", timeout=REQUEST_TIMEOUT)
            ok = 200 <= resp.status_code < 300
            error = None if ok else str(ApiError.from_response("PATCH", path, resp))[:300]
        except TargetError as exc:
            ok, error = False, str(exc)[:300]
        self.timeline.sample(PROBE, subject, t=t, ok=ok, seconds=round(self.timeline.now() - t, 4), error=error)

    def close(self) -> None:
        api = self.target.api()
        for ns in self.namespaces.values():
            try:
                api.delete(f"/api/v1/namespaces/{ns}/configmaps/{NAME}")
            except TargetError:
                pass

    @property
    def requests_per_second(self) -> float:
        return 2 / self.interval
