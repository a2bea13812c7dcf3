"""Slow a process's disk syncs: the host-side half of `disk-latency` (chaoslab.faults.disk_latency).

strace attached to the process injects a delay before each `fdatasync`/`fsync` it makes (`-e inject=…:
delay_enter=`): the real syscall runs afterwards, on the real disk; only the wait is added, in the calling
thread, as a slow device would. It reaches Go programs such as etcd, which make their syscalls without libc
(an LD_PRELOAD shim or libfaketime never sees them). The fault starts it on the member's host:

    python -m chaoslab.faults.sync_tracer --pid 4242 --delay-ms 200 --jitter-ms 50 --stall-ms 0 \\
        --until 1767225600 --detach --marker chaoslab-l0-1a2b3c4d

Phases, one strace attachment each (a process takes one tracer at a time, and strace one injection per
syscall):
- stall (`--stall-ms S`): every sync that starts during the first S milliseconds is held until they are
  over, as when a device stops answering; the tracer then detaches, which releases the held syncs at once.
- delay (`--delay-ms D`): every sync waits D ms. With `--jitter-ms J` the wait is drawn again, uniformly
  within D ± J, every `--period` seconds (a new attachment each time: strace has no random delay); a sync
  held at a redraw is released early, and for a few milliseconds between two attachments none is delayed.

It cannot outlive the fault: it exits at `--until` (the fault's dead-man's deadline) at the latest; each
strace runs under `timeout` with the same deadline and gets SIGTERM if this process dies (PR_SET_PDEATHSIG),
so a SIGKILLed tracer detaches all the same. On SIGTERM (the revert) it ends the current strace, which
detaches and lets a held sync go, then exits. `--detach` returns once the first strace is attached (exit 0)
or with the reason it is not (exit 1). The process keeps running if it ends or restarts meanwhile (a
restarted etcd has a new pid and is not traced).

The rest of this module is what the fault needs to start and stop it on a host: the command line, the
pattern that finds it, and the check that nothing is attached any more.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaoslab.targets import Target

__all__ = ["SYSCALLS", "attached_tracer", "main", "stop_tracer", "strace_argv", "tracer_command",
           "tracer_pattern"]

SYSCALLS = "fdatasync,fsync"
"""What etcd's WAL (fdatasync per batch of entries) and its bbolt backend (fdatasync per commit) call;
fsync for the directory syncs of new WAL segments."""
ATTACH_TIMEOUT = 10.0
"""Seconds strace gets to attach to every thread of the process."""
POLL = 0.05
_MARKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


def strace_argv(pid: int, delay_us: int) -> list[str]:
    """The strace command that delays every sync of `pid` by `delay_us` microseconds (0: attached, no
    delay). `-f`: every thread (Go runs syscalls on any of them); `-qq`, `signal=none`: print only syncs."""
    return ["strace", "-f", "-qq", "-p", str(pid), "-e", f"trace={SYSCALLS}", "-e", "signal=none",
            "-e", f"inject={SYSCALLS}:delay_enter={delay_us}us"]


def attached_tracer(pid: int) -> int | None:
    """The TracerPid of process `pid` (0: none), None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return 0


class _Strace:
    """One attachment: `timeout DEADLINE strace …`, its delayed syncs counted from its output."""

    def __init__(self, pid: int, delay_us: int, seconds_left: float) -> None:
        self.pid = pid
        self.delayed = 0
        self.lines: list[str] = []
        # setpriv (util-linux): SIGTERM when this tracer dies, kept across the execs of timeout and strace.
        argv = ["setpriv", "--pdeathsig", "TERM", "timeout", "-s", "TERM", "-k", "5",
                f"{max(1.0, seconds_left):.0f}", *strace_argv(pid, delay_us)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "(DELAYED)" in line:
                self.delayed += 1
            elif len(self.lines) < 20:
                self.lines.append(line.strip())

    def wait_attached(self) -> None:
        """Return once strace traces the process; RuntimeError saying why when it does not."""
        deadline = time.monotonic() + ATTACH_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(1.0)
                raise RuntimeError(f"strace exited {self.proc.returncode} before attaching to pid {self.pid}: "
                                   + ("; ".join(self.lines) or "no message"))
            tracer = attached_tracer(self.pid)
            if tracer is None:
                raise RuntimeError(f"process {self.pid} is gone")
            if tracer:
                return
            time.sleep(POLL)
        self.stop()
        raise RuntimeError(f"strace did not attach to pid {self.pid} within {ATTACH_TIMEOUT:g} s")

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (relayed by timeout to strace, which detaches every thread) and wait for the exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def run(pid: int, delay_ms: int, jitter_ms: int, stall_ms: int, period: float, until: float,
        stop: threading.Event, ready: Callable[[], None], rng: random.Random | None = None) -> int:
    """The phases (stall, then delay) until `until` (monotonic) or `stop`; returns the syncs delayed."""
    rng = rng or random.Random()
    delayed, started = 0, False

    def attach(delay_us: int) -> _Strace:
        nonlocal started
        tracer = _Strace(pid, delay_us, until - time.monotonic())
        tracer.wait_attached()
        if not started:
            ready()
            started = True
        return tracer

    def hold(tracer: _Strace, seconds: float) -> None:
        end = min(until, time.monotonic() + seconds)
        while not stop.is_set() and tracer.running() and time.monotonic() < end:
            stop.wait(min(POLL * 4, max(0.0, end - time.monotonic())))

    if stall_ms:
        tracer = attach(stall_ms * 1000)
        hold(tracer, stall_ms / 1000)
        tracer.stop()
        delayed += tracer.delayed
    while delay_ms and not stop.is_set() and time.monotonic() < until:
        wait = delay_ms + (rng.uniform(-jitter_ms, jitter_ms) if jitter_ms else 0.0)
        tracer = attach(max(0, round(wait * 1000)))
        hold(tracer, period if jitter_ms else until - time.monotonic())
        gone = not tracer.running()
        tracer.stop()
        delayed += tracer.delayed
        if gone:
            break  # the process ended (or strace was killed): nothing left to trace
    if not started:
        ready()
    return delayed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaoslab.faults.sync_tracer",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--pid", type=int, required=True, help="the process whose syncs are delayed")
    p.add_argument("--delay-ms", type=int, default=0, help="added wait before each sync, ms")
    p.add_argument("--jitter-ms", type=int, default=0, help="uniform variation of the wait, ms")
    p.add_argument("--stall-ms", type=int, default=0, help="first, hold every sync for this long, ms")
    p.add_argument("--period", type=float, default=1.0, help="seconds between redraws of a jittered wait")
    p.add_argument("--until", type=float, required=True, help="Unix time at which to exit at the latest")
    p.add_argument("--detach", action="store_true", help="run in a session of its own once attached")
    p.add_argument("--marker", default="", help="ignored; names the process for pkill")
    return p


def _detach(body: Callable[[Callable[[], None]], None]) -> int:
    """Fork; the child starts a session and runs `body(ready)`; the parent exits 0 once the child calls
    `ready`, or 1 with the child's error. The same as `chaoslab.faults.daemon.detach`, copied on purpose:
    this file runs on control-plane hosts by path, with the standard library only."""
    r, w = os.pipe()
    if os.fork():
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        if message == "ready":
            return 0
        print(f"chaoslab.faults.sync_tracer: {message or 'exited before attaching'}", file=sys.stderr)
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
        body(ready)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the parent must say it
        if listening[0]:
            os.write(w, f"{type(exc).__name__}: {exc}".encode())
        os._exit(1)
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if min(args.delay_ms, args.jitter_ms, args.stall_ms) < 0 or not (args.delay_ms or args.stall_ms) \
            or args.jitter_ms > args.delay_ms or args.period <= 0:
        print("chaoslab.faults.sync_tracer: give --delay-ms or --stall-ms (>= 0 each), a jitter no larger "
              "than the delay and a period above 0", file=sys.stderr)
        return 2
    stop = threading.Event()

    def body(ready: Callable[[], None]) -> None:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        until = time.monotonic() + (args.until - time.time())
        run(args.pid, args.delay_ms, args.jitter_ms, args.stall_ms, args.period, until, stop, ready)

    if args.detach:
        return _detach(body)
    body(lambda: None)
    return 0


# ---- what the fault runs on a host ----------------------------------------------------------------------


def _marker(marker: str) -> str:
    if not _MARKER.match(marker):
        raise ValueError(f"marker {marker!r}: use 1-64 letters, digits or '-'")
    return marker


BOOT = ("r=__import__('runpy');o=__import__('os');c=__import__('chaoslab');"
        "r.run_path(o.path.join(o.path.dirname(c.__file__),'faults','sync_tracer.py'),run_name='__main__')")
"""How the host runs this file: by path, so that starting it imports only `chaoslab/__init__` and the
standard library, not the `chaoslab.faults` package (about 2 s of imports, many more on a loaded machine,
which would stagger the stalls of `select: all`). No spaces: `tracer_pattern` matches it as one word."""


def tracer_command(python: Sequence[str], pid: int, delay_ms: int, jitter_ms: int, stall_ms: int, period: float,
                   until: int, marker: str) -> tuple[str, ...]:
    """The command that starts a detached tracer on the host (wrap it for the host): returns once strace is
    attached, or fails saying why. `python` runs chaoslab's Python there (`Target.python`)."""
    if isinstance(until, bool) or not isinstance(until, int) or until < 1:
        raise ValueError(f"until {until!r}: give a Unix time in whole seconds")
    return (*python, "-c", BOOT, "--pid", str(int(pid)), "--delay-ms", str(int(delay_ms)),
            "--jitter-ms", str(int(jitter_ms)), "--stall-ms", str(int(stall_ms)), "--period", f"{period:g}",
            "--until", str(until), "--detach", "--marker", _marker(marker))


def tracer_pattern(marker: str) -> str:
    """A `pkill -f`/`pgrep -f` pattern matching the tracer started with `marker` and nothing else: anchored
    to its own command line (`PYTHON -c BOOT … --marker MARKER`), not a wrapper's."""
    return f"^[^ ]+ -c [^ ]*'sync_tracer[.]py'[^ ]* .* --marker {_marker(marker)}$"


STOP_TIMEOUT = 15.0
"""Seconds the tracer gets to detach after SIGTERM (strace detaches every thread of the process)."""


def stop_tracer(target: Target, params: dict[str, Any] | Any, timeout: float = STOP_TIMEOUT) -> dict[str, Any]:
    """Undo of `disk-latency` on one host (`params`: host, pid, marker): SIGTERM the tracer, wait until it
    has exited and the process names no tracer (TracerPid 0 in /proc/PID/status, or the process is gone).
    Returns what was seen; `RuntimeError` saying what is still attached."""
    from chaoslab.clients.hosts import Command, wrap

    host, pid, pattern = params["host"], int(params["pid"]), tracer_pattern(params["marker"])
    how = target.host_wrap(host)
    target.run_commands(wrap([Command(("pkill", "-TERM", "-f", pattern), may_fail=True)], how))
    check = wrap([Command(("pgrep", "-f", pattern), may_fail=True),
                  Command(("grep", "^TracerPid:", f"/proc/{pid}/status"), may_fail=True)], how)
    deadline = time.monotonic() + timeout
    while True:
        running, status = target.run_commands(check)
        tracer = status.split()[1] if status.split()[1:] else None
        if not running.split() and tracer in (None, "0"):
            return {"host": host, "pid": pid, "tracer": None if tracer is None else 0}
        if time.monotonic() > deadline:
            raise RuntimeError(f"disk-latency on {host}: {timeout:g} s after SIGTERM "
                               + (f"tracer pid(s) {' '.join(running.split())} still run; " if running.split() else "")
                               + (f"pid {pid} is still traced by pid {tracer}" if tracer not in (None, "0") else "")
                               + f"; end it with `pkill -f '{pattern}'`")
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
