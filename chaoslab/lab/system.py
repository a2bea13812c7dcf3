"""Running the machine's own tools (ip, iptables, apt-get …) for the lab: argument lists, never shell
strings, and failures that say which command failed and what it printed."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from chaoslab.errors import ChaoslabError, LabError


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    error: type[ChaoslabError] = LabError,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, feeding it `stdin` (else /dev/null); with `check`, a non-zero exit raises `error` with the
    command and its stderr tail."""
    try:
        proc = subprocess.run(
            list(argv), check=False, capture_output=True, text=True, env=dict(env) if env is not None else None,
            timeout=timeout, input=stdin, stdin=subprocess.DEVNULL if stdin is None else None,
        )
    except FileNotFoundError as exc:
        raise error(f"{argv[0]} not found; run `chaoslab lab install`") from exc
    except subprocess.TimeoutExpired as exc:
        raise error(f"`{' '.join(argv)}` did not finish within {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise error(f"`{' '.join(argv)}` exited {proc.returncode}: {tail}")
    return proc
