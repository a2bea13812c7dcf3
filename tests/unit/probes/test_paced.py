"""`Sampler.paced`: an event wakes a probe sleeping at its slow pace, and stop ends it at once."""

from __future__ import annotations

import threading
import time

from chaoslab.probes.base import Sampler
from chaoslab.probes.pace import Pace, expect_times
from chaoslab.timeline import Timeline


class _Probe(Sampler):
    kind = "test"
    requests_per_second = 0.0

    def start(self) -> None:
        self.times: list[float] = []
        self.pace = Pace(slow=30.0, fast=0.01, window=5.0)
        self.first = threading.Event()
        self._spawn(self._run, "test")

    def _run(self) -> None:
        self.paced("test", self._sample, lambda now: self.pace.interval(now, expect_times(self.timeline), False), 2)

    def _sample(self) -> None:
        self.times.append(self.timeline.now())
        self.first.set()


def test_an_inject_event_switches_a_sleeping_probe_to_its_fast_pace_at_once() -> None:
    tl = Timeline.start()
    probe = _Probe(None, tl)  # type: ignore[arg-type]  # the probe asks the target nothing
    probe.start()
    try:
        assert probe.first.wait(5)
        assert len(probe.times) == 1  # the slow pace: the next sample is 30 s away
        tl.event("inject", fault="kill-process", index=0)
        deadline = time.monotonic() + 10
        while len(probe.times) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Without the wake-up the second sample would come 30 s after the first.
        assert len(probe.times) >= 5
    finally:
        started = time.monotonic()
        probe.stop()
    assert time.monotonic() - started < 5  # stop wakes the slow wait too


def test_wait_for_event_returns_the_new_generation_or_times_out() -> None:
    tl = Timeline.start()
    seen = tl.generation
    assert tl.wait_for_event(seen, 0.01) == seen
    threading.Timer(0.05, lambda: tl.event("revert")).start()
    assert tl.wait_for_event(seen, 10) == seen + 1
