"""A bounded API load generator: the process half of `api-overload`. Never unbounded: every run states its
concurrency, its total number of requests, its rate and its end, and this module refuses more than the
caps below (`Bounds`), whatever the caller asks.

    python -m chaoslab.faults.overload --target-file F --pattern list --concurrency 16 --requests 4000 \\
        --rate 0 --users 8 --namespace chaoslab-overload-o0-1a2b3c4d --seed-objects 1000 --seed-bytes 8192 \\
        --until 1767225600 --stats DIR/stats.jsonl --detach --marker chaoslab-o0-1a2b3c4d

Patterns (the shapes of real overloads):
- `list`: unpaginated, cluster-wide LISTs of ConfigMaps without a resourceVersion, so each is served from
  etcd, not the watch cache (kubernetes#125580: 20 parallel ones took an apiserver to 12 GB). `seedObjects`
  ConfigMaps of `seedBytes` each are created first, in the load's namespace, so each LIST carries weight.
- `relist`: `concurrency` clients each LIST then WATCH ConfigMaps cluster-wide; every `period` seconds all
  watches end at once (each asks the apiserver for a watch that ends at the next multiple of `period`) and
  every client relists and watches again together (the storm after an apiserver restart, kubernetes#65954);
  a watch that breaks (its apiserver went away) relists at once, as an informer does.
- `writes`: `concurrency` workers update ConfigMaps in the load's namespace as fast as allowed.

Every request is made as one of `users` distinct users (`chaoslab-load-N`, group `chaoslab:overload`, by
impersonation), so API Priority and Fairness sees many flows in its `global-default` priority level, not
chaoslab's admin (system:masters is exempt from APF). The fault grants that group `view` cluster-wide and
`edit` in the load's namespace.

It stops at `--until`, after `--requests` requests, or on SIGTERM, whichever comes first; it writes one
line a second to `--stats` (requests sent, answered by status, latency p50/p99 of that second) and a
final line with the totals. `--detach` returns once the API answered and the load is about to start.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.errors import TargetError

PATTERNS = ("list", "relist", "writes")
GROUP = "chaoslab:overload"


@dataclass(frozen=True)
class Bounds:
    """The caps every load obeys (enforced here, in the process that makes the requests)."""

    concurrency: int = 64
    """Most workers (or watchers) at once."""
    requests: int = 100_000
    """Most requests in one run (LIST, WATCH, PATCH each count one)."""
    rate: float = 1000.0
    """Most requests per second over all workers."""
    duration: float = 600.0
    """Longest run, in seconds."""
    seed_bytes: int = 64 << 20
    """Most bytes of seed ConfigMaps in all (seedObjects × seedBytes)."""
    seed_object_bytes: int = 256 << 10
    """Largest single seed ConfigMap."""


BOUNDS = Bounds()


@dataclass(frozen=True)
class Load:
    pattern: str
    concurrency: int
    requests: int
    rate: float
    """Requests per second over all workers; 0 = as fast as the workers go."""
    users: int
    namespace: str
    until: float
    seed_objects: int = 0
    seed_bytes: int = 0
    period: float = 10.0
    """relist: seconds between drops of every watch."""

    def problems(self, now: float, bounds: Bounds = BOUNDS) -> list[tuple[str, str]]:
        """(field, message) for every bound this load would break; fields are the fault's YAML names."""
        out = []
        if self.pattern not in PATTERNS:
            out.append(("pattern", f"{self.pattern!r}: one of {', '.join(PATTERNS)}"))
        if not 1 <= self.concurrency <= bounds.concurrency:
            out.append(("concurrency", f"{self.concurrency}: give 1 to {bounds.concurrency}"))
        if not 1 <= self.requests <= bounds.requests:
            out.append(("requests", f"{self.requests}: give 1 to {bounds.requests}"))
        if not 0 <= self.rate <= bounds.rate:
            out.append(("rate", f"{self.rate:g}/s: give 0 (unpaced) to {bounds.rate:g}"))
        if not 1 <= self.users <= self.concurrency:
            out.append(("users", f"{self.users}: give 1 to concurrency ({self.concurrency})"))
        if not 0 < self.until - now <= bounds.duration + 5:
            out.append(("duration", f"{self.until - now:.0f} s: give 1 to {bounds.duration:g} s"))
        if self.seed_objects < 0 or not 0 <= self.seed_bytes <= bounds.seed_object_bytes \
                or self.seed_objects * self.seed_bytes > bounds.seed_bytes:
            out.append(("seedObjects", (f"{self.seed_objects} × {self.seed_bytes} bytes: at most "
                                       f"{bounds.seed_object_bytes} bytes each and {bounds.seed_bytes} in all")))
        if self.pattern == "relist" and self.period < 1:
            out.append(("period", f"{self.period:g} s: at least 1 s"))
        return out


@dataclass
class Stats:
    """Counts shared by the workers; `line()` is one line of the stats file."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    total_statuses: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    """The first answer of each failing status, so the record says why (e.g. a 403's message)."""

    def take(self, limit: int) -> bool:
        """Claim one request of the budget; False once it is spent."""
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += 1
            return True

    def done(self, status: str, seconds: float, detail: str = "") -> None:
        with self.lock:
            if detail and status not in self.errors:
                self.errors[status] = detail[:300]
            self.statuses[status] += 1
            self.total_statuses[status] += 1
            self.latencies.append(seconds)

    def line(self, t: float) -> dict[str, Any]:
        with self.lock:
            lat, statuses = sorted(self.latencies), dict(self.statuses)
            self.latencies, self.statuses = [], Counter()
            sent = self.sent

        def q(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, math.ceil(p * len(lat)) - 1)], 4) if lat else None

        return {"t": round(t, 3), "sent": sent, "answered": statuses, "p50": q(0.5), "p99": q(0.99)}


class Pacer:
    """At most `rate` requests a second over every thread (0: no pacing)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        if not self.interval:
            return
        with self.lock:
            at = max(self.next, time.monotonic())
            self.next = at + self.interval
        stop.wait(max(0.0, at - time.monotonic()))


def _client(base: KubeApi, user: int, pool: int) -> KubeApi:
    api = base.with_pool(pool, timeout=60.0)
    api.session.headers["Impersonate-User"] = f"chaoslab-load-{user}"
    api.session.headers["Impersonate-Group"] = GROUP
    return api


def _status(resp: requests.Response | None, exc: Exception | None = None) -> str:
    return str(resp.status_code) if resp is not None else type(exc).__name__ if exc else "none"


def seed(api: KubeApi, load: Load, stop: threading.Event) -> None:
    """The ConfigMaps LISTs carry (`list` and `relist`); already there is fine."""
    if not load.seed_objects:
        return
    payload = "x" * max(0, load.seed_bytes - 200)
    names = iter(range(load.seed_objects))
    lock = threading.Lock()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                i = next(names, None)
            if i is None:
                return
            try:
                api.request("POST", f"/api/v1/namespaces/{load.namespace}/configmaps",
                            body={"metadata": {"name": f"seed-{i}"}, "data": {"payload": payload}}, timeout=60)
            except TargetError:
                continue  # the load will show what the apiserver can take

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(8, load.concurrency))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def run(base: KubeApi, load: Load, stats: Stats, stop: threading.Event) -> None:
    """The load itself, until `load.until`, the budget or `stop`."""
    pacer = Pacer(load.rate)
    per_user = math.ceil(load.concurrency / load.users) + 1
    clients = [_client(base, u, per_user) for u in range(load.users)]
    until = time.monotonic() + (load.until - time.time())
    spent = threading.Event()
    """The request budget is claimed: no worker starts another request (those waiting for their turn
    still wait for it: the rate holds to the last request)."""

    def going() -> bool:
        return not stop.is_set() and not spent.is_set() and time.monotonic() < until

    def one(api: KubeApi, method: str, path: str, **kw: Any) -> requests.Response | None:
        if not stats.take(load.requests):
            spent.set()
            return None
        pacer.wait(stop)
        if stop.is_set() or time.monotonic() >= until:
            return None  # its turn came after the end (or the stop): not sent, so no burst at the end
        t0 = time.monotonic()
        resp = exc = None
        try:
            resp = api.session.request(method, api.server + path, timeout=60, **kw)
        except requests.RequestException as e:
            exc = e
        failed = exc is not None or (resp is not None and resp.status_code >= 400)
        stats.done(_status(resp, exc), time.monotonic() - t0,
                   (str(exc) if exc else resp.text if resp is not None else "") if failed else "")
        return resp

    def lister(w: int) -> None:
        api = clients[w % load.users]
        while going():
            resp = one(api, "GET", "/api/v1/configmaps")
            if resp is not None:
                resp.close()

    def writer(w: int) -> None:
        api, seq = clients[w % load.users], 0
        path = f"/api/v1/namespaces/{load.namespace}/configmaps/load-{w}"
        api.session.request("POST", f"{api.server}/api/v1/namespaces/{load.namespace}/configmaps",
                            json={"metadata": {"name": f"load-{w}"}}, timeout=60)
        while going():
            seq += 1
            resp = one(api, "PATCH", path, data=json.dumps({"data": {"seq": str(seq)}}),
                       headers={"Content-Type": "application/merge-patch+json"})
            if resp is not None:
                resp.close()

    epoch0 = time.monotonic()

    def next_boundary() -> float:
        """The next instant at which every watch ends and every client relists: a multiple of `period`."""
        return epoch0 + (math.floor((time.monotonic() - epoch0) / load.period) + 1) * load.period

    def watcher(w: int) -> None:
        api = clients[w % load.users]
        while going():
            listed = one(api, "GET", "/api/v1/configmaps")
            if listed is None or listed.status_code != 200:
                stop.wait(0.5)
                continue
            rv = listed.json().get("metadata", {}).get("resourceVersion", "")
            boundary = next_boundary()
            if not stats.take(load.requests):
                spent.set()
                return
            # The apiserver ends the watch at the boundary (timeoutSeconds); every watcher's ends together.
            seconds = max(1, math.ceil(boundary - time.monotonic()))
            t0 = time.monotonic()
            try:
                with api.session.get(f"{api.server}/api/v1/configmaps", stream=True, timeout=(10, seconds + 30),
                                     params={"watch": "true", "resourceVersion": rv,
                                             "timeoutSeconds": str(seconds)}) as resp:
                    stats.done(_status(resp), time.monotonic() - t0)
                    for _ in resp.iter_content(chunk_size=None):
                        if not going():
                            break
            except requests.RequestException as exc:
                stats.done(_status(None, exc), time.monotonic() - t0)
                continue  # broken (the apiserver went away): relist at once, as an informer does
            stop.wait(max(0.0, boundary - time.monotonic()))  # relist with the others, at the boundary

    work = {"list": lister, "writes": writer, "relist": watcher}[load.pattern]
    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(load.concurrency)]
    for th in threads:
        th.start()
    while not stop.is_set() and time.monotonic() < until and any(th.is_alive() for th in threads):
        stop.wait(0.2)
    stop.set()
    for th in threads:
        th.join(5)


def process_pattern(marker: str) -> str:
    """A `pkill -f`/`pgrep -f` pattern for the generator started with `marker`."""
    return f"^[^ ]+ -m chaoslab[.]faults[.]overload .* --marker {marker}$"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaoslab.faults.overload", description=__doc__.split("\n\n")[0])
    p.add_argument("--target-file", type=Path, required=True, help="JSON with the target's description")
    p.add_argument("--pattern", choices=PATTERNS, required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--seed-objects", type=int, default=0)
    p.add_argument("--seed-bytes", type=int, default=0)
    p.add_argument("--period", type=float, default=10.0)
    p.add_argument("--until", type=float, required=True)
    p.add_argument("--stats", type=Path, required=True)
    p.add_argument("--detach", action="store_true")
    p.add_argument("--marker", default="", help="ignored; names the process for pkill")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from chaoslab.faults.daemon import detach
    from chaoslab.targets import target_from_description

    args = _parser().parse_args(argv)
    load = Load(args.pattern, args.concurrency, args.requests, args.rate, args.users, args.namespace, args.until,
                args.seed_objects, args.seed_bytes, args.period)
    if problems := load.problems(time.time()):
        print(f"chaoslab.faults.overload: refused: {'; '.join(f'{f} {m}' for f, m in problems)}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def go(ready: Callable[[], None]) -> None:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        target = target_from_description(json.loads(args.target_file.read_text())["target"])
        base = target.api()
        base.get("/version")
        ready()
        stats = Stats()
        started = time.time()
        with open(args.stats, "a") as out:
            out.write(json.dumps({"event": "start", "load": load.__dict__, "t": started}) + "\n")
            seed(_client(base, 0, 8), load, stop)
            out.write(json.dumps({"event": "seeded", "t": round(time.time() - started, 3)}) + "\n")
            out.flush()
            runner = threading.Thread(target=run, args=(base, load, stats, stop), daemon=True)
            runner.start()
            while runner.is_alive():
                runner.join(1.0)
                out.write(json.dumps(stats.line(time.time() - started)) + "\n")
                out.flush()
            out.write(json.dumps({"event": "end", "t": round(time.time() - started, 3), "sent": stats.sent,
                                  "answered": dict(stats.total_statuses), "errors": stats.errors}) + "\n")

    if args.detach:
        return detach(go, "chaoslab.faults.overload", "exited before the load started")
    go(lambda: None)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
