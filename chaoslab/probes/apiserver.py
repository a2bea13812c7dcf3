"""apiserver probe: GET /readyz on the load-balanced endpoint (`lb`) and on every apiserver, every
250 ms by default. /readyz is what load balancers and kubeadm check; its etcd check times out after 2 s,
so the request timeout is a little longer."""

from __future__ import annotations

import requests

from chaoslab.probes.base import Sampler


class ApiserverProbe(Sampler):
    kind = "apiserver"
    interval = 0.25

    def start(self) -> None:
        self.session = self.target.api().session
        for subject, url in self.target.apiserver_endpoints().items():
            self._spawn(lambda s=subject, u=url: self._endpoint_loop(s, u), f"apiserver-{subject}")

    def _endpoint_loop(self, subject: str, url: str) -> None:
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            t = self.timeline.now()
            try:
                status: int | None = self.session.get(f"{url}/readyz", timeout=2.5).status_code
            except requests.RequestException:
                status = None
            self.timeline.sample("apiserver", subject, t=t, ready=status == 200, status=status)
            next_at += self.interval
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    @property
    def requests_per_second(self) -> float:
        return len(self.target.apiserver_endpoints()) / self.interval
