"""Notifications of a finished game day: a webhook gets an HTTP POST (gameday.json, or summary.md as
text/markdown), a command runs with the summary on stdin and the result in its environment. A
notification that fails is a warning, never a different exit code: the result is already on disk.
Called by the CLI after `chaoslab gameday run`.

    >>> send([Notification(webhook="http://chat.example/hook")], Path("runs/…-weekly"), 1)   # doctest: +SKIP
    []
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import requests

from chaoslab.spec.gameday import Notification

TIMEOUT = 30.0
"""Seconds a webhook or command may take."""


def send(notifications: Sequence[Notification], day_dir: Path, exit_code: int) -> tuple[list[str], list[str]]:
    """Send every notification that applies (`on: failure` only when `exit_code` is not 0); returns
    (what was sent, problems)."""
    sent: list[str] = []
    problems: list[str] = []
    summary = (day_dir / "summary.md").read_text(encoding="utf-8")
    record = (day_dir / "gameday.json").read_text(encoding="utf-8")
    for n in notifications:
        if n.on == "failure" and exit_code == 0:
            continue
        if n.webhook:
            body, kind = (record, "application/json") if n.format == "json" else (summary, "text/markdown")
            try:
                response = requests.post(n.webhook, data=body.encode("utf-8"), timeout=TIMEOUT,
                                         headers={"Content-Type": f"{kind}; charset=utf-8"})
                response.raise_for_status()
                sent.append(f"posted the {n.format} result to {n.webhook} ({response.status_code})")
            except requests.RequestException as exc:
                problems.append(f"{n.where}: webhook {n.webhook} failed: {exc}")
        elif n.command:
            env = {**os.environ, "CHAOSLAB_GAMEDAY_DIR": str(day_dir), "CHAOSLAB_GAMEDAY_EXIT": str(exit_code),
                   "CHAOSLAB_GAMEDAY_JSON": str(day_dir / "gameday.json")}
            try:
                proc = subprocess.run(list(n.command), input=summary, text=True, env=env, timeout=TIMEOUT,
                                      capture_output=True, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{n.where}: command {n.command[0]} failed: {exc}")
                continue
            if proc.returncode != 0:
                problems.append(f"{n.where}: command {n.command[0]} exited {proc.returncode}: "
                                f"{(proc.stderr or proc.stdout).strip()[-300:]}")
            else:
                sent.append(f"ran {' '.join(n.command)}")
    return sent, problems
