"""Kubernetes API consistency probe (`kube-sequence`): the data-safety guarantees of the etcd workload
(`chaoslab.probes.writes`) seen through the apiservers. One ConfigMap is updated in sequence, read back
from every apiserver, and watched on every apiserver; `chaoslab.judge.consistency` judges the samples after the
run (`resourceVersionRegressions`, `watchGaps`, `watchRelists`, `apiReadErrorRate`, `apiWriteErrorRate`).

- Updates: every `interval` (200 ms) one PUT through the load-balanced endpoint sets `data.counter` to the
  next number (a failed update still uses up its number, so a late commit of a timed-out update is told
  apart). Sample `kube-sequence/update`: ok, counter, rv (the resourceVersion the apiserver acknowledged),
  error, seconds.
- Reads: every `read_interval` (250 ms) each endpoint (`lb` and every apiserver) GETs the ConfigMap
  without a `resourceVersion` parameter. That is a quorum read, served from etcd (a linearizable range),
  never from the apiserver's watch cache (`resourceVersion=0` would be, and may lag). Sample
  `kube-sequence/read-<endpoint>`: ok, counter, rv, floor (the highest resourceVersion any response
  of this probe had carried before the read was sent), error, seconds.
- Watches: each endpoint lists the ConfigMap (field selector on its name) and watches from the list's
  resourceVersion, resuming from the last one seen after the server ends a watch or the connection
  breaks. A 410 Gone ("too old resource version") is an expiry and is followed by a relist. Samples
  `kube-sequence/watch-<endpoint>`: what (`list`, `event`, `bookmark`, `expired`, `relist`, `broken`,
  `end`), rv, counter, error.

resourceVersion is opaque to clients in general, but every apiserver stores in etcd3, where it is the etcd
revision (mod_revision of the object, or of the store for a list): a decimal integer that only grows. The
probe records it as an int (None if it is not one, and the checks are then not measured).

When the probe stops it stops updating first and gives every watch up to `catch_up` seconds to deliver the
last acknowledged update, then deletes the ConfigMap. Load: 1/interval updates, endpoints/read_interval
reads (lb + 3 apiservers: 21/s at the defaults), one watch per endpoint renewed every 10 s.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from chaoslab.clients.kubeapi import ApiError, KubeApi
from chaoslab.errors import TargetError
from chaoslab.probes.base import Sampler
from chaoslab.probes.canary import LABEL, NAMESPACE, ensure_namespace

PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


def resource_version(obj: Any) -> int | None:
    """An object's (or list's) resourceVersion as the etcd revision it is, or None."""
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def counter_of(obj: Any) -> int | None:
    try:
        return int(obj["data"]["counter"])
    except (KeyError, TypeError, ValueError):
        return None


def _error(exc: TargetError) -> str:
    return (f"{exc.status} {exc.reason}" if isinstance(exc, ApiError) else str(exc))[:200]


class KubeSequenceProbe(Sampler):
    kind = "kube-sequence"
    interval = 0.2
    #: Seconds between the quorum reads of each endpoint.
    read_interval = 0.25
    #: Seconds the watches get at stop to deliver the last acknowledged update.
    catch_up = 5.0
    #: Server-side timeout of each watch request: a quiet watch is renewed this often.
    watch_seconds = 10

    def start(self) -> None:
        self.name = f"sequence-{uuid.uuid4().hex[:8]}"
        self.object_path = f"{PATH}/{self.name}"
        self.selector = f"metadata.name={self.name}"
        session = self.target.api().session
        self.apis = {ep: KubeApi(url, session, timeout=2.5) for ep, url in self.target.apiserver_endpoints().items()}
        self.lock = threading.Lock()
        self.highest = 0
        """The highest resourceVersion any response of this probe carried (reads and acknowledged updates)."""
        self.acked = 0
        """The resourceVersion of the last acknowledged update."""
        self.position: dict[str, int] = {}
        """Endpoint → the resourceVersion its watch has delivered up to."""
        self.writing = threading.Event()
        self.writing.set()
        self.watching = threading.Event()
        """Watches outlive `stopped` (which the probe group sets first) until the catch-up is over."""
        self.watching.set()
        self.counter = 0
        self._create()
        self._spawn(self.loop, "kube-sequence-update")
        for ep in self.apis:
            self._spawn(lambda e=ep: self._read_loop(e), f"kube-sequence-read-{ep}")
            self._spawn(lambda e=ep: self._watch_loop(e), f"kube-sequence-watch-{ep}")

    def _body(self, counter: int) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": self.name, "labels": {LABEL: "sequence"}},
                "data": {"counter": str(counter)}}

    def _create(self) -> None:
        api = self.apis["lb"]
        ensure_namespace(api)
        obj = api.create(PATH, self._body(0))
        self._saw(resource_version(obj))

    def _saw(self, rv: int | None, acked: bool = False) -> None:
        if rv is None:
            return
        with self.lock:
            self.highest = max(self.highest, rv)
            if acked:
                self.acked = max(self.acked, rv)

    # ---- updates ----------------------------------------------------------------------------------
    def loop(self) -> None:
        next_at = self.timeline.now()
        while self.writing.is_set() and not self.stopped.is_set():
            self.sample_once()
            # Slots missed while a request hung are skipped, not sent in a burst: a burst of quick answers
            # after the fault would dilute the error rate.
            next_at = max(next_at + self.interval, self.timeline.now())
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    def sample_once(self) -> None:
        self.counter += 1
        t = self.timeline.now()
        try:
            # Unconditional (no resourceVersion in the body): a single writer needs no optimistic lock, and an
            # update that timed out but committed later must not make every later one conflict.
            obj = self.apis["lb"].replace(self.object_path, self._body(self.counter))
        except TargetError as exc:
            self.timeline.sample("kube-sequence", "update", t=t, ok=False, counter=self.counter, rv=None,
                                 error=_error(exc), seconds=round(self.timeline.now() - t, 4))
            return
        rv = resource_version(obj)
        self._saw(rv, acked=True)
        self.timeline.sample("kube-sequence", "update", t=t, ok=True, counter=self.counter, rv=rv, error=None,
                             seconds=round(self.timeline.now() - t, 4))

    # ---- quorum reads -----------------------------------------------------------------------------
    def _read_loop(self, ep: str) -> None:
        api = self.apis[ep]
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            with self.lock:
                floor = self.highest
            t = self.timeline.now()
            try:
                obj = api.get(self.object_path)  # no resourceVersion: a quorum read from etcd
                rv = resource_version(obj)
                self.timeline.sample("kube-sequence", f"read-{ep}", t=t, ok=True, counter=counter_of(obj), rv=rv,
                                     floor=floor, error=None, seconds=round(self.timeline.now() - t, 4))
                self._saw(rv)
            except TargetError as exc:
                self.timeline.sample("kube-sequence", f"read-{ep}", t=t, ok=False, counter=None, rv=None,
                                     floor=floor, error=_error(exc), seconds=round(self.timeline.now() - t, 4))
            next_at = max(next_at + self.read_interval, self.timeline.now())
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    # ---- watches ----------------------------------------------------------------------------------
    def _watch_sample(self, ep: str, what: str, rv: int | None, counter: int | None = None,
                      error: str | None = None) -> None:
        self.timeline.sample("kube-sequence", f"watch-{ep}", what=what, rv=rv, counter=counter, error=error)
        if rv is not None and what in ("list", "relist", "event", "bookmark"):
            with self.lock:
                self.position[ep] = max(self.position.get(ep, 0), rv)

    def _list(self, ep: str, what: str) -> int | None:
        listing = self.apis[ep].get(PATH, fieldSelector=self.selector)
        rv = resource_version(listing)
        items = listing.get("items") or []
        self._watch_sample(ep, what, rv, counter_of(items[0]) if items else None)
        return rv

    def _watch_loop(self, ep: str) -> None:
        api = self.apis[ep]
        rv: int | None = None
        expired = False
        while self.watching.is_set():
            try:
                if rv is None:
                    rv = self._list(ep, "relist" if expired else "list")
                    if rv is None:
                        return  # not an etcd3 revision: nothing to compare
                for event in api.watch(PATH, resource_version=str(rv), timeout_seconds=self.watch_seconds,
                                       fieldSelector=self.selector):
                    if not self.watching.is_set():
                        return
                    obj, kind = event.get("object") or {}, event.get("type")
                    if kind == "ERROR":
                        code = obj.get("code")
                        if code == 410:
                            self._watch_sample(ep, "expired", rv, error=str(obj.get("message", ""))[:200])
                            rv, expired = None, True
                        else:
                            self._watch_sample(ep, "broken", rv, error=f"{code} {obj.get('message', '')}"[:200])
                        break
                    got = resource_version(obj)
                    if got is None:
                        continue
                    if kind == "BOOKMARK":
                        self._watch_sample(ep, "bookmark", got)
                    elif kind in ("ADDED", "MODIFIED"):
                        self._watch_sample(ep, "event", got, counter_of(obj))
                    rv = got
            except ApiError as exc:
                if exc.status == 410:
                    self._watch_sample(ep, "expired", rv, error=_error(exc))
                    rv, expired = None, True
                else:
                    self._watch_sample(ep, "broken", rv, error=_error(exc))
                    time.sleep(0.2)
            except TargetError as exc:
                # The apiserver is down or cut off (that may be the fault): resume from `rv` once it answers.
                self._watch_sample(ep, "broken", rv, error=_error(exc))
                time.sleep(0.2)

    # ---- stop -------------------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        if not hasattr(self, "apis") or not self._threads:  # never started, or the ConfigMap was never created
            super().stop(timeout)
            return
        self.writing.clear()
        self._threads[0].join(timeout)
        deadline = time.monotonic() + self.catch_up
        while time.monotonic() < deadline:
            with self.lock:
                behind = [ep for ep in self.apis if self.position.get(ep, 0) < self.acked]
            if not behind:
                break
            time.sleep(0.1)
        self.stopped.set()
        self.watching.clear()
        with self.lock:
            positions = dict(self.position)
        for ep in self.apis:
            self.timeline.sample("kube-sequence", f"watch-{ep}", what="end", rv=positions.get(ep), counter=None,
                                 error=None)
        self.close()
        # Watches end on their own within `watch_seconds`; readers within one request timeout.
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        if not hasattr(self, "apis"):
            return
        try:
            self.apis["lb"].delete(self.object_path)
        except TargetError:
            pass

    @property
    def requests_per_second(self) -> float:
        return 1 / self.interval + len(self.target.apiserver_endpoints()) / self.read_interval
