"""Canary probe: every 2 s (default) creates a small pod in its own namespace. The create is an API
write (is the API writable?), and the time until the real scheduler binds the pod is scheduling latency
(is anyone scheduling?). Bound pods are deleted at once; everything is removed when the probe stops.
Load: one create and one delete per interval, plus one read per pending pod every 250 ms."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import TargetError
from chaoslab.probes.base import Sampler

NAMESPACE = "chaoslab-canary"
LABEL = "chaoslab.io/canary"


def canary_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {LABEL: "scheduling"}},
        "spec": {
            "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9",
                            "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}],
            "terminationGracePeriodSeconds": 0,
            # No token volume: the canary must not depend on the token controller being up.
            "automountServiceAccountToken": False,
        },
    }


def ensure_namespace(api: KubeApi, name: str = NAMESPACE) -> None:
    """Create the probes' namespace unless it is there. Looked up first, so a least-privilege account
    (deploy/rbac: the namespace made by the manifests, no right to create namespaces) never needs `create`."""
    try:
        api.get(f"/api/v1/namespaces/{name}")
        return
    except ApiError as exc:
        if exc.status != 404:
            raise
    try:
        api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiError as exc:
        if exc.status != 409:
            raise


class CanaryProbe(Sampler):
    kind = "canary"
    interval = 2.0

    def _prepare(self) -> None:
        api = self.target.api()
        ensure_namespace(api)
        # ServiceAccount admission refuses pods until the namespace's default ServiceAccount exists.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.stopped.is_set():
            with contextlib.suppress(TargetError):  # a busy apiserver answering late: ask again
                if api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default").status_code == 200:
                    return
            time.sleep(0.2)

    #: Seconds between looks at pending pods: the resolution of the scheduling latency.
    check_interval = 0.25
    pending: dict[str, float] = {}  # noqa: RUF012 - never written: the loop gives the probe its own when it starts

    def loop(self) -> None:
        self._prepare()
        self.pending = {}
        self.looked: dict[str, float] = {}
        """pod → when it was last seen pending (the request's send time), or its create acknowledged."""
        self.seq = 0
        next_create = self.timeline.now()
        while not self.stopped.is_set():
            if self.timeline.now() >= next_create:
                self.create_one()
                next_create += self.interval
            self.check_pending()
            self.stopped.wait(self.check_interval)

    def create_one(self) -> None:
        api = self.target.api()
        self.seq += 1
        name = f"canary-{int(self.timeline.started_wall)}-{self.seq}"
        with self.asking() as t:
            try:
                api.create(f"/api/v1/namespaces/{NAMESPACE}/pods", canary_pod(name))
                acked = self.timeline.now()
                self.timeline.sample("canary", "write", t=t, ok=True, seconds=acked - t, error=None)
                self.pending[name] = t
                self.looked[name] = acked  # the pod exists from here on at the latest
                self.timeline.sample("canary", "scheduling", t=t, pod=name, bound=False, seconds=0.0)
            except TargetError as exc:
                self.timeline.sample("canary", "write", t=t, ok=False, seconds=self.timeline.now() - t,
                                     error=str(exc)[:200])

    def check_pending(self) -> None:
        api = self.target.api()
        for pod, created in list(self.pending.items()):
            asked = self.timeline.now()
            try:
                obj = api.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}")
            except TargetError:
                continue
            now = self.timeline.now()
            if obj["spec"].get("nodeName"):
                # Bound before this answer; not before the last look that found it pending (or before the
                # create was acknowledged): `pendingAt` − that is the latency's lower edge.
                self.timeline.sample("canary", "scheduling", t=now, pod=pod, bound=True, seconds=now - created,
                                     pendingAt=self.looked.pop(pod, created) - created)
                del self.pending[pod]
                self._delete(pod)
                continue
            self.looked[pod] = asked
            if int(now - created) > int(now - created - self.check_interval):
                # Still pending: one sample a second is enough to show it.
                self.timeline.sample("canary", "scheduling", t=now, pod=pod, bound=False, seconds=now - created)

    def _delete(self, pod: str) -> None:
        try:
            self.target.api().delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}", gracePeriodSeconds=0)
        except TargetError:
            pass

    def close(self) -> None:
        try:
            self.target.api().request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods",
                                      params={"labelSelector": LABEL, "gracePeriodSeconds": 0})
        except TargetError:
            pass

    @property
    def requests_per_second(self) -> float:
        return 2 / self.interval + len(self.pending) / self.check_interval
