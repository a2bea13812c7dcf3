"""apiserver probe: GET /readyz on the load-balanced endpoint (`lb`) and on every apiserver, every
250 ms by default, and every `fast_interval` (100 ms) for `expect_window` seconds after an inject or revert
event and while the endpoint is not ready (`chaoslab.probes.pace`): an unavailability is bracketed by
the samples around it, so the fast pace bounds `apiserverUnavailable`'s bracket. /readyz is what load
balancers and kubeadm check; its etcd check times out after 2 s, so the request timeout is a little
longer. Load: 4/s per endpoint when quiet, 10/s per endpoint at the fast pace."""

from __future__ import annotations

import requests

from chaoslab.probes.base import Sampler
from chaoslab.probes.pace import LEADER_ELECTED, Pace, expect_times


class ApiserverProbe(Sampler):
    kind = "apiserver"
    interval = 0.25
    fast_interval = 0.1
    """Seconds between requests to an endpoint while a change is expected or it is not ready."""
    expect_window = 5.0
    """Seconds after an inject or revert event during which a change is expected."""

    def start(self) -> None:
        self.pace = Pace(self.interval, min(self.fast_interval, self.interval), self.expect_window)
        self.session = self.target.api().session
        for subject, url in self.target.apiserver_endpoints().items():
            self._spawn(lambda s=subject, u=url: self._endpoint_loop(s, u), f"apiserver-{subject}")

    def _endpoint_loop(self, subject: str, url: str) -> None:
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            with self.asking() as t:
                error = None
                try:
                    status: int | None = self.session.get(f"{url}/readyz", timeout=2.5).status_code
                except requests.Timeout:
                    status, error = None, "timeout"
                except requests.RequestException as exc:
                    status, error = None, type(exc).__name__
                self.timeline.sample("apiserver", subject, t=t, ready=status == 200, status=status, error=error)
            now = self.timeline.now()
            next_at = max(next_at + self.pace.interval(now, expect_times(self.timeline, LEADER_ELECTED), status != 200), now)
            self.stopped.wait(max(0.0, next_at - now))

    @property
    def requests_per_second(self) -> float:
        return len(self.target.apiserver_endpoints()) / self.interval

    @property
    def peak_requests_per_second(self) -> float:
        """While a change is expected."""
        return len(self.target.apiserver_endpoints()) / min(self.fast_interval, self.interval)
