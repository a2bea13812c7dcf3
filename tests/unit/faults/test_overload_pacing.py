"""The load generator's rate is a bound to the last request: workers waiting for their turn when the budget
runs out, or when the load ends, must not all fire at once (they did: the budget's end woke every waiting
worker). Against a local HTTP server that records when each request arrives."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise

import pytest
import requests

from chaoslab.clients.kubeapi import KubeApi
from chaoslab.faults.overload import Load, Stats, run


@pytest.fixture
def server() -> Iterator[tuple[str, list[float]]]:
    arrivals: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrivals.append(time.monotonic())
            body = b'{"items": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", arrivals
    httpd.shutdown()


def load(**kw: object) -> Load:
    base = {"pattern": "list", "concurrency": 16, "requests": 4, "rate": 5.0, "users": 2, "namespace": "x",
            "until": time.time() + 10}
    return Load(**{**base, **kw})  # type: ignore[arg-type]


def test_the_budget_running_out_does_not_release_the_waiting_workers_at_once(server: tuple[str, list[float]]) -> None:
    url, arrivals = server
    run(KubeApi(url, requests.Session()), load(), Stats(), threading.Event())
    assert len(arrivals) == 4
    gaps = [b - a for a, b in pairwise(arrivals)]
    assert min(gaps) >= 0.15, gaps  # 5 per second: 0.2 s apart


def test_the_end_of_the_load_does_not_release_the_waiting_workers_either(server: tuple[str, list[float]]) -> None:
    url, arrivals = server
    started = time.monotonic()
    run(KubeApi(url, requests.Session()), load(requests=100, rate=4.0, until=time.time() + 1.2), Stats(),
        threading.Event())
    assert len(arrivals) <= 6, len(arrivals)  # 4 per second for 1.2 s (and the first at once)
    assert all(t - started <= 1.4 for t in arrivals)
