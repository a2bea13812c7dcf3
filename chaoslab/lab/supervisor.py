"""The lab supervisor: runs every process of `lab.json`, restarts one that exits after a delay (as the kubelet
restarts a static pod), and records every start and exit.

It is a daemon started by `chaoslab lab up` (`python -m chaoslab.lab.supervisor STATE_DIR`) and stopped by
`chaoslab lab down` with SIGTERM. Faults kill the processes it runs; it is what brings them back. What it
knows is written where everyone else reads it, so nobody needs to talk to it:

- `status.json`: per process pid, state (running / waiting / held), start time, restarts, last exit;
  rewritten atomically on every change.
- `events.jsonl`: one JSON object a line per start and exit, with wall-clock time.
- `hold/<process id>`: while this file exists an exited process is not restarted (a fault that wants a
  component to stay down creates it, and removes it at revert).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests
import urllib3

from chaoslab.lab.components import ProcessSpec

POLL_SECONDS = 0.05
STOP_GRACE_SECONDS = 10.0


def describe_exit(returncode: int) -> str:
    return f"signal {signal.Signals(-returncode).name}" if returncode < 0 else f"exit {returncode}"


@dataclass
class Supervised:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes] | None = None
    started: float | None = None
    restarts: int = 0
    last_exit: str | None = None
    restart_at: float | None = None
    log: TextIO | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        plan = json.loads((state_dir / "lab.json").read_text())
        self.restart_delay = float(plan["config"]["restart_delay"])
        self.children = [Supervised(ProcessSpec(**p)) for p in plan["processes"]]
        self.hold_dir = state_dir / "hold"
        self.stopping = False
        self._session = requests.Session()
        self._session.trust_env = False
        self._events = (state_dir / "events.jsonl").open("a", buffering=1)

    # ---- records ----------------------------------------------------------------------------------
    def _record(self, child: Supervised, event: str, **detail: Any) -> None:
        rec = {"time": time.time(), "id": child.spec.id, "event": event, **detail}
        self._events.write(json.dumps(rec) + "\n")

    def write_status(self) -> None:
        processes: dict[str, dict[str, Any]] = {}
        for c in self.children:
            running = c.proc is not None and c.proc.returncode is None
            state = "running" if running else ("held" if self._held(c) else "waiting")
            processes[c.spec.id] = {
                "pid": c.proc.pid if running and c.proc else None,
                "state": state,
                "started": c.started if running else None,
                "restarts": c.restarts,
                "last_exit": c.last_exit,
            }
        status = {"supervisor": os.getpid(), "updated": time.time(), "processes": processes}
        tmp = self.state_dir / "status.json.tmp"
        tmp.write_text(json.dumps(status, indent=1))
        tmp.replace(self.state_dir / "status.json")

    # ---- processes --------------------------------------------------------------------------------
    def _held(self, child: Supervised) -> bool:
        return (self.hold_dir / child.spec.id).exists()

    def start(self, child: Supervised) -> None:
        if child.log is None:
            Path(child.spec.log).parent.mkdir(parents=True, exist_ok=True)
            child.log = open(child.spec.log, "a", buffering=1)  # noqa: SIM115 - lives as long as the child
        child.log.write(f"--- chaoslab supervisor: starting at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        child.proc = subprocess.Popen(
            child.spec.argv, stdin=subprocess.DEVNULL, stdout=child.log, stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C on a terminal that ran `lab up` never reaches the lab.
            start_new_session=True,
        )
        child.started = time.time()
        child.restart_at = None
        self._record(child, "start", pid=child.proc.pid)

    def step(self) -> bool:
        """Reap exits and start what is due; True when anything changed."""
        changed = False
        now = time.monotonic()
        for c in self.children:
            if c.proc is not None and c.proc.poll() is not None:
                c.last_exit = describe_exit(c.proc.returncode)
                self._record(c, "exit", pid=c.proc.pid, how=c.last_exit)
                c.proc = None
                c.restart_at = now + self.restart_delay
                changed = True
            if c.proc is None and c.restart_at is not None and now >= c.restart_at and not self._held(c):
                c.restarts += 1
                self.start(c)
                changed = True
        return changed

    def _open_gates(self, urls: set[str]) -> set[str]:
        """The URLs among `urls` that answer 200 now: one request per distinct URL, one shared session."""
        opened = set()
        with warnings.catch_warnings():
            # Only a readiness gate: the lab CA is checked by every real client, not here.
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            for url in urls:
                try:
                    if self._session.get(url, verify=False, timeout=1).status_code == 200:
                        opened.add(url)
                except requests.RequestException:
                    pass
        return opened

    def run(self) -> None:
        gated = []
        for c in self.children:
            if c.spec.start_when:
                gated.append(c)
            else:
                self.start(c)
        self.write_status()
        while gated and not self.stopping:
            opened = self._open_gates({c.spec.start_when or "" for c in gated})
            for c in [c for c in gated if c.spec.start_when in opened]:
                self.start(c)
                gated.remove(c)
            self.step()
            self.write_status()
            time.sleep(0.25)
        while not self.stopping:
            if self.step():
                self.write_status()
            time.sleep(POLL_SECONDS)
        self.stop_all()

    def stop_all(self) -> None:
        """SIGTERM everything (newest layer first), SIGCONT paused ones so they see it, SIGKILL stragglers."""
        live = [c for c in reversed(self.children) if c.proc is not None and c.proc.poll() is None]
        for c in live:
            assert c.proc is not None
            for sig in (signal.SIGTERM, signal.SIGCONT):
                try:
                    os.kill(c.proc.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for c in live:
            assert c.proc is not None
            try:
                c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
            self._record(c, "exit", pid=c.proc.pid, how=describe_exit(c.proc.returncode), stopping=True)
            c.proc = None
        self.write_status()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    state_dir = Path(args[0])
    supervisor = Supervisor(state_dir)

    def stop(signum: int, frame: object) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    (state_dir / "supervisor.pid").write_text(str(os.getpid()))
    try:
        supervisor.run()
    finally:
        (state_dir / "supervisor.pid").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
