"""records probe: the components' own records of the run, read once when the run's probes stop.

Not a sampler of the cluster: when the run ends it asks the target for the logs of etcd, kube-scheduler and
kube-controller-manager on every host (`Target.component_log`), keeps the elections the winners logged
inside the run's window (`chaoslab.judge.groundtruth`), and appends each to the timeline as a sample
(probe `records`, subject `<component>@<host>`, values `what: "leader"`, `component`, `host`, `term`,
`wall`), timestamped by the log line itself. The measurements set them beside the probes' figures
(ground truth, with the difference). A target that cannot read logs leaves one `records/read` sample
with the error. Load: none while the run goes on; one read of each log at the end.
"""

from __future__ import annotations

import time

from chaoslab.errors import TargetError
from chaoslab.judge.groundtruth import COMPONENTS, PROBE, parse
from chaoslab.probes.base import Sampler


class RecordsProbe(Sampler):
    kind = PROBE

    def start(self) -> None:
        self._read = False

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if not self._read:
            self._read = True
            self.read()

    def read(self) -> None:
        tl = self.timeline
        # The window the other probes observed: up to the run's end (they are stopped right after it).
        ended = [e.t for e in tl.events_of("run-end")]
        start, end = tl.started_wall, tl.started_wall + min([tl.now(), *ended])
        year = time.gmtime(start).tm_year
        errors, unread = [], []
        for component in COMPONENTS:
            for host in self.target.hosts(component):
                try:
                    text = self.target.component_log(component, host)
                except TargetError as exc:
                    errors.append(str(exc))
                    unread.append(f"{component}@{host}")
                    continue
                for r in parse(component, host, text, year):
                    if start <= r.wall <= end:
                        tl.sample(PROBE, f"{component}@{host}", t=round(r.wall - start, 4), what="leader",
                                  component=component, host=host, term=r.term, wall=r.wall)
        tl.sample(PROBE, "read", t=round(end - start, 4), ok=not errors, error="; ".join(errors[:3]) or None,
                  unread=unread)

    @property
    def requests_per_second(self) -> float:
        return 0.0
