"""What every probe is: a sampler thread that appends timestamped samples to the run's timeline until
told to stop. Probes only observe; verdicts are computed later from the timeline alone."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from chaoslab.clients.etcd import EtcdMember
from chaoslab.errors import TargetError
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
        self._asking: dict[int, float] = {}
        self._asking_lock = threading.Lock()
        self._asks = itertools.count()

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

    @contextmanager
    def asking(self) -> Iterator[float]:
        """The time of a sample whose request is about to be sent. Until the block ends (its sample is on
        the timeline, whatever the answer), the timeline is not final from that time on: `settled_until`.
        Probes that stamp a sample with the time its request was sent use it."""
        with self._asking_lock:
            key, t = next(self._asks), self.timeline.now()
            self._asking[key] = t
        try:
            yield t
        finally:
            with self._asking_lock:
                del self._asking[key]

    def settled_until(self, now: float) -> float:
        """Up to when this probe's samples are all on the timeline: `now` (read before calling), or the
        time of the oldest request still waiting for its answer."""
        with self._asking_lock:
            return min([now, *self._asking.values()])

    def loop(self) -> None:
        # Fixed-rate schedule: a slow answer does not shift every later sample.
        next_at = self.timeline.now()
        while not self.stopped.is_set():
            self.sample_once()
            next_at += self.interval
            self.stopped.wait(max(0.0, next_at - self.timeline.now()))

    def sample_once(self) -> None:
        pass

    def paced(self, name: str, sample: Callable[[], None], step: Callable[[float], float], in_flight: int) -> None:
        """Call `sample` once per tick of a pace (`step(now)`: seconds to the next tick), each call on a small
        pool, so a request that stalls does not hold back the next sample. A tick with `in_flight` calls
        still running is skipped: never more than `in_flight` requests out at once, whatever happens."""
        free = threading.Semaphore(in_flight)

        def one() -> None:
            try:
                sample()
            finally:
                free.release()

        tl = self.timeline
        with ThreadPoolExecutor(in_flight, thread_name_prefix=f"probe-{name}") as pool:
            tick = tl.now()
            while not self.stopped.is_set():
                if free.acquire(blocking=False):
                    # `_guard`: an unexpected error is logged, never raised into the run.
                    pool.submit(self._guard, one)
                # Fixed-rate schedule at the current pace; a probe that fell behind does not burst. An event
                # (an injection) wakes the wait: the next tick is then due at the pace it sets, from the
                # last tick — at once when the pace turned fast.
                seen = tl.generation
                while True:
                    now = tl.now()
                    pace = step(now)
                    due = tick + pace
                    if due <= now or self.stopped.is_set():
                        break
                    seen = tl.wait_for_event(seen, due - now)
                tick = due if now - due < pace else now

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        self.timeline.wake()
        self.close()
        for t in self._threads:
            t.join(timeout)

    def close(self) -> None:
        """Release clients; called once when the probe stops."""

    @property
    @abstractmethod
    def requests_per_second(self) -> float:
        """The load this probe puts on what it measures."""


class MemberSampler(Sampler):
    """A sampler with a client of its own for each etcd member, made by `start` and closed when it stops
    (none before it starts)."""

    members: Mapping[str, EtcdMember] = MappingProxyType({})

    def close(self) -> None:
        for m in self.members.values():
            m.close()


WATCH_SECONDS = 5
"""Server-side length of one watch (`timeoutSeconds`)."""
STALL_SECONDS = 2.0
"""Seconds past the watch's end without a byte after which its connection counts as stalled."""


def list_then_watch(sampler: Sampler, path: str, record: Callable[..., None]) -> None:
    """A sampler's loop over the objects at `path`: list them (each recorded with `t`, `via="list"` and
    the list's `rtt`), then watch from that version (each ADDED or MODIFIED object recorded as it
    arrives), and list again after a 410 Gone, a broken watch or an API that does not answer. Short
    server-side watches let the loop notice `stop` within seconds; a watch silent for longer is stalled
    (e.g. on an apiserver a partition cut off from its clients): it is given up and the objects listed
    again through the load balancer, or every change until the partition heals would be seen late."""
    api = sampler.target.api()
    version: str | None = None
    while not sampler.stopped.is_set():
        try:
            if version is None:
                t = sampler.timeline.now()
                listing = api.get(path)
                rtt = round(sampler.timeline.now() - t, 4)
                for item in listing["items"]:
                    record(item, t=t, via="list", rtt=rtt)
                version = listing["metadata"]["resourceVersion"]
            for event in api.watch(path, resource_version=version, timeout_seconds=WATCH_SECONDS,
                                   silence=WATCH_SECONDS + STALL_SECONDS):
                if sampler.stopped.is_set():
                    return
                if event["type"] == "ERROR":
                    version = None  # 410 Gone: too old; relist
                    break
                obj: Mapping[str, Any] = event["object"]
                version = obj["metadata"].get("resourceVersion", version)
                if event["type"] in ("ADDED", "MODIFIED"):
                    record(obj)
        except TargetError:
            # The API is down (that may be the fault); keep trying without hammering it.
            sampler.stopped.wait(0.2)
            version = None
        except (KeyError, ValueError):
            time.sleep(0.2)
            version = None
