"""What every probe is: a sampler thread that appends timestamped samples to the run's timeline until
told to stop. Probes only observe; verdicts are computed later from the timeline alone."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

from chaoslab.targets import Target
from chaoslab.timeline import Timeline

log = logging.getLogger("chaoslab.probes")


class Sampler(ABC):
    """Subclasses implement `sample_once` (polling, every `interval` seconds) or override `loop`."""

    kind: str = ""
    params: tuple[str, ...] = ()
    """Parameters the probe takes besides `interval` (keywords of its constructor), as written in a probe
    set or inline in `spec.probes`."""
    interval: float = 1.0

    def __init__(self, target: Target, timeline: Timeline, interval: float | None = None) -> None:
        self.target = target
        self.timeline = timeline
        if interval is not None:
            self.interval = interval
        self.stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._spawn(self.loop, self.kind)

    def _spawn(self, func: object, name: str) -> None:
        t = threading.Thread(target=self._guard, args=(func,), name=f"probe-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def _guard(self, func: object) -> None:
        try:
            func()  # type: ignore[operator]
        except Exception:  # a probe must never take the run down; its silence shows in the timeline
            if self.stopped.is_set():
                # stop() closes the clients first, to cut short a request in flight: an error from that
                # request is the stop, not a failure.
                log.debug("probe %s ended by its stop", self.kind, exc_info=True)
            else:
                log.exception("probe %s failed", self.kind)

    def loop(self) -> None:
        # Fixed-rate schedule: a slow answer does not shift every later sample.
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            self.sample_once()
            next_at += self.interval
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    def sample_once(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        self.close()
        for t in self._threads:
            t.join(timeout)

    def close(self) -> None:
        """Release clients; called once when the probe stops."""

    @property
    @abstractmethod
    def requests_per_second(self) -> float:
        """The load this probe puts on what it measures."""
