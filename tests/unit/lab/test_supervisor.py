"""The supervisor for real, with `sleep` standing in for control-plane binaries (its logic is generic)."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoslab.lab.components import ProcessSpec


def wait_for(predicate, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def status(state: Path) -> dict:  # type: ignore[type-arg]
    try:
        return json.loads((state / "status.json").read_text())["processes"]  # type: ignore[no-any-return]
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    specs = [ProcessSpec(id=f"sleeper@h{i}", kind="sleeper", host=f"h{i}", argv=["sleep", "300"],
                         log=str(tmp_path / f"sleeper{i}.log")) for i in (1, 2)]
    (tmp_path / "lab.json").write_text(json.dumps(
        {"config": {"restart_delay": 0.3}, "processes": [s.to_json() for s in specs]}))
    (tmp_path / "hold").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "chaoslab.lab.supervisor", str(tmp_path)])
    wait_for(lambda: all(p["state"] == "running" for p in status(tmp_path).values()) and status(tmp_path))
    yield tmp_path, proc
    proc.terminate()
    proc.wait(timeout=15)


def test_killed_process_is_restarted_after_the_delay_and_both_are_recorded(supervised) -> None:  # type: ignore[no-untyped-def]
    state, _ = supervised
    old = status(state)["sleeper@h1"]["pid"]
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (p := status(state)["sleeper@h1"])["pid"] not in (None, old) and p)
    assert new["restarts"] == 1 and new["last_exit"] == "signal SIGKILL"
    events = [json.loads(line) for line in (state / "events.jsonl").read_text().splitlines()]
    kinds = [(e["id"], e["event"]) for e in events if e["id"] == "sleeper@h1"]
    assert kinds == [("sleeper@h1", "start"), ("sleeper@h1", "exit"), ("sleeper@h1", "start")]
    assert events[-1]["time"] - events[-2]["time"] >= 0.3


def test_held_process_stays_down_until_the_hold_is_removed(supervised) -> None:  # type: ignore[no-untyped-def]
    state, _ = supervised
    (state / "hold" / "sleeper@h2").touch()
    os.kill(status(state)["sleeper@h2"]["pid"], signal.SIGKILL)
    wait_for(lambda: status(state)["sleeper@h2"]["state"] == "held")
    time.sleep(0.6)
    assert status(state)["sleeper@h2"]["pid"] is None
    (state / "hold" / "sleeper@h2").unlink()
    wait_for(lambda: status(state)["sleeper@h2"]["state"] == "running")


def test_stop_terminates_every_child_even_a_paused_one(supervised) -> None:  # type: ignore[no-untyped-def]
    state, proc = supervised
    pids = [p["pid"] for p in status(state).values()]
    os.kill(pids[0], signal.SIGSTOP)
    proc.terminate()
    proc.wait(timeout=15)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (state / "supervisor.pid").exists()
