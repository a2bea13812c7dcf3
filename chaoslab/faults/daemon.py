"""Detaching a fault's helper process (the network delayer, the webhook server, the load generator): it
forks, the child starts a session of its own (so chaoslab's death or Ctrl-C does not reach it) and runs
until its own deadline, and the parent returns only once the child is ready, or with the child's error.
(`sync_tracer` keeps a copy of this: it runs on control-plane hosts by path, with the standard library
only, where chaoslab may not be installed.)"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def detach(run: Callable[[Callable[[], None]], None], name: str, not_ready: str) -> int:
    """Fork; the child starts a session and runs `run(ready)`, with stdio on /dev/null from `ready` on; the
    parent exits 0 once the child calls `ready`, or 1 printing the child's error as `name: error` (or
    `not_ready` when the child ended without one)."""
    r, w = os.pipe()
    if os.fork():
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        if message == "ready":
            return 0
        print(f"{name}: {message or not_ready}", file=sys.stderr)
        return 1
    os.close(r)
    os.setsid()
    listening = [True]

    def ready() -> None:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(w, b"ready")
        os.close(w)
        listening[0] = False

    try:
        run(ready)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the parent must say it
        if listening[0]:  # not ready yet: the parent reports it
            os.write(w, f"{type(exc).__name__}: {exc}".encode())
        os._exit(1)
    os._exit(0)
