"""chaoslab as a user runs it, for the integration tests: the CLI in a subprocess, a run SIGKILLed once its
fault is in (what a crash or an OOM kill leaves behind), and `chaoslab recover`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waiting import eventually


def chaoslab(*args: str) -> list[str]:
    """The command line of `chaoslab ARGS` with this interpreter."""
    return [sys.executable, "-m", "chaoslab.cli", *args]


def start_run(experiment: Path, runs: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """`chaoslab run EXPERIMENT --no-live --runs-dir RUNS` in the background, output captured."""
    return subprocess.Popen(chaoslab("run", str(experiment), "--no-live", "--runs-dir", str(runs)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def sigkill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float, what: str) -> None:
    """SIGKILL the run once `ready()` (its fault is in); fail with its output if it ended before."""
    try:
        eventually(lambda: ready() or proc.poll() is not None, timeout, what)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def only_run(runs: Path) -> Path:
    """The one run directory under `runs`."""
    [run_dir] = list(runs.iterdir())
    return run_dir


def recover(run_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(chaoslab("recover", str(run_dir)), capture_output=True, text=True, timeout=timeout,
                          check=False)
