"""apiserver probe: GET /readyz on the load-balanced endpoint (`lb`) and on every apiserver, every
250 ms by default, and faster for `expect_window` seconds after an inject or revert event and while the
endpoint is not ready (`chaoslab.probes.pace`): every `fast_interval` (20 ms) on `lb`, whose samples
`apiserverUnavailable` and the `apiserver-ready` steady state are judged on, and every
`host_fast_interval` (100 ms) on each apiserver, except one that an injection of the run names (a kill
of `kube-apiserver@cp2`): that one is sampled at `lb`'s pace after its events and while it is not ready,
so its own readiness edges are as sharp as `lb`'s. An unavailability is bracketed by the samples around
it, so the fast pace bounds its bracket. Every apiserver at 20 ms was tried and not kept: 200 /readyz/s
(each an etcd read) doubled etcd's and the apiservers' CPU over an etcd experiment and, with up to 128
requests in flight in the probing process, made the etcd probe's own samples late (detection p95 46 ms
instead of 8 ms; docs/benchmarks.md).

/readyz is what load balancers and kubeadm check; its etcd check (a read) times out after 2 s, so the
request timeout is a little longer. A sample is stamped with the time its request was sent and records its
round trip (`rtt`): "ready" means a /readyz sent then was answered 200. Requests run on a small pool per
endpoint (`Sampler.paced`), so one that hangs for the etcd check's 2 s does not hold back the next
sample (with one request at a time, an etcd election left a 2 s hole in every endpoint's series, and
`apiserverUnavailable` a bracket as wide); each endpoint has a connection pool of its own, so a sample
reuses a connection instead of a TLS handshake.

Load: 4 requests/s per endpoint when quiet; while a change is expected or the endpoint is not ready, 50/s
on `lb`, 10/s per apiserver and 50/s to an apiserver an injection names, never more than `IN_FLIGHT` (32)
in flight to `lb` or `HOST_IN_FLIGHT` (8) to one apiserver. With the lab's four endpoints that is 80
/readyz/s (each one etcd read) for 5 s after each injection and revert, 120 when the injection names an
apiserver (which, killed, answers none of them) (`bench/detection_delay.py` measures what it costs)."""

from __future__ import annotations

import functools
import threading

import requests

from chaoslab.probes.base import Sampler
from chaoslab.probes.pace import LEADER_ELECTED, Pace, expect_times, named_times

IN_FLIGHT = 32
"""Most /readyz requests in flight to the load-balanced endpoint at once."""
HOST_IN_FLIGHT = 8
"""Most /readyz requests in flight to one apiserver at once."""
LB = "lb"
COMPONENT = "kube-apiserver"
TIMEOUT = 2.5
"""Seconds before an unanswered /readyz counts as not ready (its etcd check gives up after 2 s)."""


class ApiserverProbe(Sampler):
    kind = "apiserver"
    interval = 0.25
    fast_interval = 0.02
    """Seconds between requests to `lb` while a change is expected or it is not ready."""
    host_fast_interval = 0.1
    """The same, to each apiserver."""
    expect_window = 5.0
    """Seconds after an inject or revert event during which a change is expected."""

    def start(self) -> None:
        self._ready: dict[str, tuple[float, bool]] = {}
        self._ready_lock = threading.Lock()
        api = self.target.api()
        self.sessions = {}
        for subject, url in self.target.apiserver_endpoints().items():
            fast, in_flight = self._fast(subject)
            self.sessions[subject] = api.with_pool(in_flight).session
            pace = Pace(self.interval, fast, self.expect_window)
            self._spawn(lambda s=subject, u=url, p=pace, n=in_flight: self._endpoint_loop(s, u, p, n),
                        f"apiserver-{subject}")

    def _fast(self, subject: str) -> tuple[float, int]:
        """(fast interval, most requests in flight) of an endpoint: `lb` is judged, the apiservers are not."""
        fast, in_flight = (self.fast_interval, IN_FLIGHT) if subject == LB else (self.host_fast_interval,
                                                                                  HOST_IN_FLIGHT)
        return min(fast, self.interval), in_flight

    def _endpoint_loop(self, subject: str, url: str, pace: Pace, in_flight: int) -> None:
        self.paced(f"apiserver-{subject}", lambda: self._sample(subject, url),
                   lambda now: self._step(subject, pace, now), in_flight)

    def _step(self, subject: str, pace: Pace, now: float) -> float:
        """Seconds to an endpoint's next sample: its own pace, or `lb`'s for an apiserver an injection names."""
        trouble = not self._ready.get(subject, (0.0, True))[1]
        step = pace.interval(now, expect_times(self.timeline, LEADER_ELECTED), trouble)
        named = [] if subject == LB else named_times(self.timeline, f"{COMPONENT}@{subject}")
        return min(step, self._lb_pace.interval(now, named, trouble)) if named else step

    @functools.cached_property
    def _lb_pace(self) -> Pace:
        return Pace(self.interval, self._fast(LB)[0], self.expect_window)

    def _sample(self, subject: str, url: str) -> None:
        with self.asking() as t:
            error = None
            try:
                status: int | None = self.sessions[subject].get(f"{url}/readyz", timeout=TIMEOUT).status_code
            except requests.Timeout:
                status, error = None, "timeout"
            except requests.RequestException as exc:
                if self.stopped.is_set():
                    return  # stop() closed the session under this request: not the endpoint's failure
                status, error = None, type(exc).__name__
            self.timeline.sample("apiserver", subject, t=t, ready=status == 200, status=status, error=error,
                                 rtt=round(self.timeline.now() - t, 4))
        with self._ready_lock:
            # Answers may arrive out of order: keep the answer to the latest request sent.
            if self._ready.get(subject, (-1.0, True))[0] <= t:
                self._ready[subject] = (t, status == 200)

    def close(self) -> None:
        for session in getattr(self, "sessions", {}).values():  # as EtcdProbe.close: stop() may precede start()
            session.close()

    @property
    def requests_per_second(self) -> float:
        return len(self.target.apiserver_endpoints()) / self.interval

    @property
    def peak_requests_per_second(self) -> float:
        """While a change is expected, with one apiserver named by an injection."""
        endpoints = self.target.apiserver_endpoints()
        named = 1 / self.fast_interval - 1 / self.host_fast_interval if set(endpoints) - {LB} else 0.0
        return sum(1 / self._fast(s)[0] for s in endpoints) + named
