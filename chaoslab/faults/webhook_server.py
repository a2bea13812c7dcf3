"""A small admission webhook server that misbehaves on purpose: the server half of `webhook-outage`.

The fault starts it where every apiserver can reach it (on the lab: the lab network's switch namespace,
`Target.service_host`), detached, and registers a Validating- or MutatingWebhookConfiguration whose
`clientConfig.url` points at it:

    ip netns exec chaoslab-lab-net python -m chaoslab.faults.webhook_server --mode hang --hang 15 \\
        --address 10.213.0.3 --port 23456 --cert DIR/server.crt --key DIR/server.key --log DIR/requests.jsonl \\
        --until 1767225600 --detach --marker chaoslab-w0-1a2b3c4d

Modes (what every admission request gets):
- `allow`: an AdmissionReview answer allowing it (the healthy baseline: added latency only);
- `deny`: an answer refusing it, with a message naming chaoslab;
- `error500`: HTTP 500, no AdmissionReview;
- `hang`: nothing for `--hang` seconds (the fault passes more than the webhook's `timeoutSeconds`), then
  the connection is closed without an answer;
- `bad-cert`: the TLS handshake itself fails at the apiserver, because `--cert` is expired or signed by
  a CA the configuration's caBundle does not hold (the fault makes such a certificate); if a client
  still gets through, it is allowed.

It exits by itself at `--until` (the fault's dead-man's deadline plus the time its heal may wait for the
apiservers to drop the configuration), so it cannot outlive the fault, and at once on SIGTERM (the undo).
Each request is logged to `--log`, one JSON object a line (time, mode, the request's uid, resource,
namespace, operation), so tests can see that the apiserver really called it.
`--detach` returns once the port is bound (exit 0) or the reason it is not (exit 1).

On a cluster where chaoslab cannot start a process, the same file runs alone in a pod
(`chaoslab.faults.webhook_pod`: `python /chaoslab/webhook_server.py …` in any image with Python 3.9 or
newer): it needs nothing beyond the standard library unless `--detach` is given.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("allow", "deny", "error500", "hang", "bad-cert")
MAX_BODY = 4 << 20
"""Largest request body read (bytes); the apiserver sends one AdmissionReview, well below this."""
MAX_HANG = 120.0
"""Longest a hanging request is held (s), whatever `--hang` says."""


def review_answer(request: dict[str, Any], allowed: bool, message: str = "") -> dict[str, Any]:
    """The AdmissionReview an apiserver expects back for `request` (same apiVersion, its uid).

        >>> review_answer({"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u1"}}, False, "no")["response"]
        {'uid': 'u1', 'allowed': False, 'status': {'code': 403, 'message': 'no'}}
    """
    response: dict[str, Any] = {"uid": (request.get("request") or {}).get("uid", ""), "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 403, "message": message}
    return {"apiVersion": request.get("apiVersion") or "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": response}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mode: str
    hang: float
    log_path: str | None
    stop: threading.Event
    lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests go to the JSON log instead."""

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        raw = self.rfile.read(length) if length else b""
        try:
            review = json.loads(raw) if raw else {}
        except ValueError:
            review = {}
        req = review.get("request") or {}
        mode = self.server.mode
        self._log({"t": round(time.time(), 3), "mode": mode, "uid": req.get("uid"),
                   "resource": (req.get("resource") or {}).get("resource"),
                   "subResource": req.get("subResource"), "namespace": req.get("namespace"),
                   "operation": req.get("operation"), "name": req.get("name")})
        if mode == "hang":
            self.server.stop.wait(min(self.server.hang, MAX_HANG))
            self.close_connection = True
            return
        if mode == "error500":
            self._send(500, b'{"error": "chaoslab webhook-outage: error500"}')
            return
        allowed = mode in ("allow", "bad-cert")
        body = review_answer(review, allowed, "chaoslab webhook-outage: denied on purpose (mode deny)")
        self._send(200, json.dumps(body).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _log(self, entry: dict[str, Any]) -> None:
        if not self.server.log_path:
            return
        with self.server.lock, open(self.server.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def serve(mode: str, address: str, port: int, cert: str, key: str, hang: float, log: str | None, until: float,
          stop: threading.Event, ready: Callable[[], None]) -> None:
    """Bind, call `ready`, answer requests until `stop` is set or the wall clock passes `until`."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: one of {', '.join(MODES)}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _Server((address, port), _Handler)
    server.mode, server.hang, server.log_path, server.stop = mode, hang, log, stop
    server.lock = threading.Lock()
    # The handshake happens in the handler's thread (lazily), so a client that stalls it holds one thread only.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    ready()
    try:
        while not stop.wait(0.2) and time.time() < until:
            pass
    finally:
        stop.set()  # releases hanging handlers
        server.shutdown()
        server.server_close()


def process_pattern(marker: str) -> str:
    """A `pkill -f`/`pgrep -f` pattern for the server started with `marker`, anchored to its own command
    line (`PYTHON -m chaoslab.faults.webhook_server … --marker MARKER`)."""
    return f"^[^ ]+ -m chaoslab[.]faults[.]webhook_server .* --marker {marker}$"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaoslab.faults.webhook_server", description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--address", required=True, help="address to listen on")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True, help="serving certificate (PEM)")
    p.add_argument("--key", required=True, help="its private key (PEM)")
    p.add_argument("--hang", type=float, default=0.0, help="seconds a request is held in mode hang")
    p.add_argument("--log", default=None, help="append one JSON line per request here")
    p.add_argument("--until", type=float, required=True, help="Unix time at which to exit at the latest")
    p.add_argument("--detach", action="store_true", help="run in a session of its own once the port is bound")
    p.add_argument("--marker", default="", help="ignored; names the process for pkill")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def run(ready: Callable[[], None]) -> None:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        serve(args.mode, args.address, args.port, args.cert, args.key, args.hang, args.log, args.until, stop, ready)

    if args.detach:
        # Late: the file also runs alone, in a pod, where there is no chaoslab package and no --detach.
        from chaoslab.faults.daemon import detach

        return detach(run, sys.argv[0], "exited before binding its port")
    run(lambda: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
