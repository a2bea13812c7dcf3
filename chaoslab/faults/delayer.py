"""Hold queued packets for a delay: the userspace half of `network-degrade`'s delay on kernels without netem.

iptables rules (`chaoslab.faults.netrules.nfqueue_commands`) divert packets to netfilter queue N; this process,
running in the same network namespace, takes each one, holds it for `delay ± jitter` and then lets it go
on (verdict ACCEPT): real packets on the kernel's own path, only the waiting happens here. The fault
starts it on each host whose incoming packets are delayed:

    python -m chaoslab.faults.delayer --queue 12345 --delay-ms 1500 --jitter-ms 0 --until 1767225600 \\
        --detach --marker chaoslab-d0-1a2b3c4d

It is safe to lose: the rules say `--queue-bypass`, so once it is gone (killed, crashed) packets pass
undelayed; it exits by itself at `--until` (the fault's dead-man's deadline) so it cannot outlive the
fault; on SIGTERM (heal) or at `--until` it lets every held packet go before exiting. Packets that were
held when it is SIGKILLed are dropped by the kernel, as on a lossy link; TCP resends them.

Without jitter every packet waits exactly `delay`, so packets leave in the order they came. With jitter
each waits `delay + uniform(-jitter, jitter)` on its own, and packets whose delays cross are reordered, as
netem does. `--detach` returns once the queue is bound (exit 0) or the reason it is not (exit 1), leaving
the delayer running in a session of its own."""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from chaoslab.faults.daemon import detach

__all__ = ["Held", "Schedule", "main"]

P = TypeVar("P")

MAX_HELD = 65536
"""Packets the kernel keeps waiting for a verdict at once; beyond that it lets them pass (fail-open)."""
RCVBUF = 16 << 20
"""Bytes of netlink socket buffer, so a burst of packets is not dropped before this process reads it."""
POLL = 0.2
"""Longest sleep (s) between checks for SIGTERM and `--until` while no packet is due."""


@dataclass(frozen=True)
class Schedule:
    """How long each packet waits: `delay_ms`, varied uniformly by up to ± `jitter_ms`, never below zero."""

    delay_ms: int
    jitter_ms: int = 0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.delay_ms < 1 or self.jitter_ms < 0:
            raise ValueError(f"delay {self.delay_ms} ms, jitter {self.jitter_ms} ms: give a delay >= 1 ms "
                             f"and a jitter >= 0 ms")

    def wait(self) -> float:
        """Seconds the next packet is held."""
        jitter = self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.delay_ms + jitter) / 1000


class Held(Generic[P]):
    """Packets waiting for their release time, earliest first; ties keep arrival order. Not thread-safe:
    the caller holds a lock.

        >>> held: Held[str] = Held()
        >>> held.add("b", 2.0); held.add("a", 1.0); held.add("c", 2.0)
        >>> held.due(2.0), held.next_release()
        (['a', 'b', 'c'], None)
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, P]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, packet: P, release: float) -> None:
        heapq.heappush(self._heap, (release, next(self._seq), packet))

    def next_release(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[P]:
        """Remove and return the packets whose release time has come, in release order."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def all(self) -> list[P]:
        """Remove and return every packet, in release order (at exit: let everything go)."""
        return self.due(float("inf"))


def hold(queue: int, schedule: Schedule, until_monotonic: float, stop: threading.Event,
         ready: Callable[[], None] = lambda: None) -> int:
    """Bind netfilter queue `queue` and delay its packets until `until_monotonic` or `stop`; return the
    number of packets delayed. Needs CAP_NET_ADMIN in the namespace whose queue it serves."""
    import fnfqueue  # imported here: the rest of chaoslab (and its unit tests) never need it

    conn = fnfqueue.Connection(packet_size=4096)  # metadata only: the payload stays in the kernel
    try:
        try:
            q = conn.bind(queue)
        except PermissionError as exc:
            raise PermissionError(f"cannot bind netfilter queue {queue}: another process has it, or this one "
                                  f"lacks CAP_NET_ADMIN") from exc
        q.set_mode(0xFFFF, fnfqueue.COPY_META)
        q.set_maxlen(MAX_HELD)
        q.fail_open = True  # a full queue lets packets pass rather than drop them
        q.gso = True  # whole GSO packets, not segmented just to be held
        sock = socket.socket(fileno=conn._conn.fd)
        try:
            sock.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE (root): bursts fit
        finally:
            sock.detach()
    except Exception:
        conn.close()
        raise
    ready()
    held: Held[Any] = Held()
    lock = threading.Condition()
    count = 0

    def take() -> None:
        nonlocal count
        while True:
            try:
                for packet in conn:
                    with lock:
                        held.add(packet, time.monotonic() + schedule.wait())
                        count += 1
                        lock.notify()
                return
            except fnfqueue.BufferOverflowException:
                conn.reset()  # the kernel dropped some (fail-open does not cover this); keep going

    threading.Thread(target=take, name="take", daemon=True).start()
    try:
        with lock:
            while not stop.is_set() and (now := time.monotonic()) < until_monotonic:
                for packet in held.due(now):
                    packet.accept()
                nxt = held.next_release()
                lock.wait(min(POLL, until_monotonic - now, POLL if nxt is None else nxt - now))
            for packet in held.all():
                packet.accept()
    finally:
        conn.close()
    return count


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaoslab.faults.delayer", description=__doc__.split("\n\n")[0])
    p.add_argument("--queue", type=int, required=True, help="netfilter queue number (0-65535)")
    p.add_argument("--delay-ms", type=int, required=True, help="added delay in milliseconds")
    p.add_argument("--jitter-ms", type=int, default=0, help="uniform variation of the delay, ms")
    p.add_argument("--until", type=float, required=True, help="Unix time at which to exit at the latest")
    p.add_argument("--detach", action="store_true", help="run in a session of its own once the queue is bound")
    p.add_argument("--marker", default="", help="ignored; names the process for pkill")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 <= args.queue <= 65535:
        print(f"chaoslab.faults.delayer: queue {args.queue}: give 0-65535", file=sys.stderr)
        return 2
    try:
        schedule = Schedule(args.delay_ms, args.jitter_ms)
    except ValueError as exc:
        print(f"chaoslab.faults.delayer: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def run(ready: Callable[[], None]) -> None:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        until = time.monotonic() + (args.until - time.time())
        hold(args.queue, schedule, until, stop, ready)

    if args.detach:
        return detach(run, "chaoslab.faults.delayer", "exited before binding its queue")
    run(lambda: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
