"""The fuzzer's oracle: one case, written into a directory that mirrors the repository (so a game day's
`../x.yaml` steps resolve), run through `chaoslab.cli.main` in this process:

    chaoslab validate FILE
    chaoslab gameday run FILE      (loading only: the game-day runner is replaced by a stub)
    chaoslab export --to chaostoolkit FILE -o OUT

Each must exit 0 or 2, print no traceback, name the file when it refuses it, and finish in under
`SLOW` seconds. A file that is accepted must hold finite durations and whole counts; an exported file must
be strict JSON that chaoslib's `ensure_experiment_is_valid` (what `chaos validate` runs) accepts.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzz.mutate import Case, seeds

SLOW = float(os.environ.get("FUZZ_SLOW", "2.0"))
"""CPU seconds one command may take. CPU time, not wall time: on a shared machine (load 20 on 2 cores) a
0.25 s parse can take 3 s of wall time; a hang is still caught by the wall-clock alarm (`HANG`)."""
HANG = 10.0
"""Seconds after which a command is interrupted (and reported with where it was)."""
INT_PARAMS = ("count", "minority", "parallelism", "maxPods", "maxNodes", "maxMembers")


class Hang(BaseException):
    """Raised by the alarm in a command that runs too long (BaseException: nothing in chaoslab catches it)."""


class _Loaded(BaseException):
    """The game-day runner's stub: loading got this far."""

    def __init__(self, day: Any) -> None:
        self.day = day


@dataclass(frozen=True)
class Finding:
    kind: str
    """traceback, exit, unnamed, slow, hang, memory, semantic, export."""
    command: str
    detail: str


def _on_alarm(signum: int, frame: Any) -> None:
    raise Hang(f"still running after {HANG:.0f} s")


class Oracle:
    """Owns the mirror directory; `check(case)` returns the findings of one case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "tree"
        self.out = root / "out"
        shutil.rmtree(root, ignore_errors=True)
        self.out.mkdir(parents=True)
        self.seed_paths = set()
        for s in seeds():
            p = self.base / s.path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(s.text, encoding="utf-8")
            self.seed_paths.add(s.path)
        signal.signal(signal.SIGALRM, _on_alarm)
        import functools

        import chaoslab.cli

        # argparse builds the same parser for every call (a third of a small file's time): build it once.
        chaoslab.cli.parser = functools.cache(chaoslab.cli.parser)  # type: ignore[method-assign]
        self._stub_game_day_runner()
        os.chdir(self.base)  # probe sets are looked up in ./probes first

    @staticmethod
    def _stub_game_day_runner() -> None:
        import importlib

        def stub(day: Any, **kw: Any) -> Any:
            raise _Loaded(day)

        for name in ("chaoslab.ops.gameday", "chaoslab.run.gameday"):
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            module.run_game_day = stub  # type: ignore[attr-defined]
            return
        raise RuntimeError("no game-day runner module to stub")

    # ---- the input on disk ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def materialise(self, case: Case) -> Iterator[str]:
        rel = Path(case.path)
        if str(rel) in self.seed_paths:
            rel = rel.parent / f"fz-{rel.name}"
        path = self.base / rel
        made: list[Path] = []
        try:
            self._make(path, case.special, case.content, made)
            for extra, kind in case.extra:
                self._make(self.base / extra, kind, None, made)
            yield str(path)
        finally:
            for p in reversed(made):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()

    @staticmethod
    def _make(path: Path, special: str, content: bytes | None, made: list[Path]) -> None:
        try:
            for parent in reversed(path.parents):
                if not parent.exists():
                    parent.mkdir()
                    made.append(parent)
            if path.exists() or path.is_symlink():
                return
            if special == "fifo":
                os.mkfifo(path)
            elif special in ("dev-zero", "dev-urandom", "dev-null"):
                os.symlink(f"/dev/{special[4:]}", path)
            elif special == "directory":
                path.mkdir()
                (path / "inner.yaml").write_bytes(content or b"x: 1\n")
            elif special == "symlink-loop":
                os.symlink(path, path)
            elif special == "missing":
                return
            elif special == "dir-with-fifo":
                path.mkdir()
                os.mkfifo(path / "a.yaml")
                (path / "b.yaml").write_bytes(content or b"")
            elif special == "big":
                with open(path, "wb") as f:
                    f.write(b"# padding padding padding padding padding padding padding padding\n" * 300_000)
                    f.write(content or b"")
            elif special == "big-line":
                path.write_bytes((content or b"") + b"\nzz: " + b"x" * 5_000_000 + b"\n")
            elif special == "socket":
                with socket.socket(socket.AF_UNIX) as s:
                    s.bind(str(path))
            elif special == "unreadable":
                path.write_bytes(content or b"")
                path.chmod(0)
            else:
                path.write_bytes(content or b"")
        except OSError:
            return  # a name the file system refuses (300 characters): the input is a missing file
        made.append(path)

    # ---- running ----------------------------------------------------------------------------------
    def _main(self, argv: list[str]) -> tuple[int | None, str, str, Any, float]:
        """(exit code or None, output, traceback text, loaded game day, seconds)."""
        from chaoslab.cli import main

        buf = io.StringIO()
        code: int | None = None
        tb, day = "", None
        started = time.process_time()
        signal.setitimer(signal.ITIMER_REAL, HANG)
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                code = main(argv)
        except _Loaded as loaded:
            code, day = 0, loaded.day
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except Hang:
            tb = "HANG\n" + traceback.format_exc()
        except MemoryError:
            tb = "MEMORY\n" + traceback.format_exc(limit=-15)
        except BaseException:  # noqa: BLE001 - anything else escaping main is the finding
            tb = traceback.format_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return code, buf.getvalue(), tb, day, time.process_time() - started

    def _argv(self, command: str, path: str) -> list[str]:
        if command == "validate":
            return ["validate", path]
        if command == "gameday":
            return ["gameday", "run", path, "--yes", "--no-live", "--runs-dir", str(self.out / "runs")]
        return ["export", "--to", "chaostoolkit", path, "-o", str(self.out / "export.json")]

    def check(self, case: Case) -> list[Finding]:
        findings: list[Finding] = []
        self.codes: list[tuple[str, int | None]] = []
        with self.materialise(case) as path:
            for command in case.commands:
                out_file = self.out / "export.json"
                out_file.unlink(missing_ok=True)
                argv = self._argv(command, path)
                code, output, tb, day, seconds = self._main(argv)
                if seconds > SLOW and not tb:  # once more: the machine is shared, a pause is not a finding
                    out_file.unlink(missing_ok=True)
                    code, output, tb, day, seconds = self._main(argv)
                self.codes.append((command, code))
                findings += self._judge(command, path, code, output, tb, seconds)
                if code == 0 and not tb:
                    findings += self._semantic(command, path, day, out_file)
        return findings

    @staticmethod
    def _judge(command: str, path: str, code: int | None, output: str, tb: str,
               seconds: float) -> list[Finding]:
        if tb.startswith("HANG"):
            return [Finding("hang", command, tb[-3000:])]
        if tb.startswith("MEMORY"):
            return [Finding("memory", command, tb[-3000:])]
        if tb:
            return [Finding("traceback", command, tb[-3000:])]
        found = []
        if "Traceback (most recent call last)" in output:
            found.append(Finding("traceback", command, output[-3000:]))
        if code not in (0, 2):
            found.append(Finding("exit", command, f"exit {code}: {output[-2000:]}"))
        squeeze = re.compile(r"\s+")
        if code == 2 and squeeze.sub("", path) not in squeeze.sub("", output):
            found.append(Finding("unnamed", command, f"{path!r} not in: {output[-2000:]}"))
        if seconds > SLOW:
            found.append(Finding("slow", command, f"{seconds:.2f} s of CPU"))
        return found

    def _semantic(self, command: str, path: str, day: Any, out_file: Path) -> list[Finding]:
        problems: list[str] = []
        if command == "validate":
            from chaoslab.spec.loader import validate_all

            experiments, days, _ = validate_all([Path(path)])
            for e in experiments:
                problems += experiment_problems(e)
            for d in days:
                problems += game_day_problems(d)
        elif command == "gameday" and day is not None:
            problems += game_day_problems(day)
        elif command == "export":
            problems += export_problems(out_file)
        return [Finding("semantic" if command != "export" else "export", command, p) for p in problems]


def _finite(value: Any, what: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{what} is {type(value).__name__} {value!r:.80}, not a number"]
    if not math.isfinite(value) or value < 0:
        return [f"{what} is {value!r}"]
    return []


def _whole(value: Any, what: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{what} is {type(value).__name__} {value!r:.80}, not an integer"]
    return []


def _numbers(value: Any, what: str) -> list[str]:
    """Every float inside a parameter tree finite; the counting parameters whole."""
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _numbers(v, f"{what}.{k}")
            if k in INT_PARAMS and v is not None:
                out += _whole(v, f"{what}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            out += _numbers(v, f"{what}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        out.append(f"{what} is {value!r}")
    return out


def experiment_problems(e: Any) -> list[str]:
    from chaoslab.spec.model import METRICS

    out = _finite(e.duration, "duration") + _finite(e.settle, "settle") + \
        _finite(e.recovery_timeout, "recovery_timeout") + _whole(e.runs, "runs")
    if isinstance(e.runs, int) and e.runs < 1:
        out.append(f"runs is {e.runs}")
    for s in e.slos:
        out += _finite(s.threshold, f"slo {s.metric}")
        if METRICS.get(s.metric) == "count" and isinstance(s.threshold, float) and not s.threshold.is_integer():
            out.append(f"slo {s.metric} (a count) is {s.threshold!r}")
    for m, v in e.abort.items():
        out += _finite(v, f"abort {m}")
    for name in ("maxNodes", "maxPods", "maxMembers"):
        v = getattr(e.blast_radius, name)
        if v is not None:
            out += _whole(v, f"blastRadius.{name}")
    if not isinstance(e.blast_radius.allowQuorumLoss, bool):
        out.append(f"blastRadius.allowQuorumLoss is {e.blast_radius.allowQuorumLoss!r}")
    for i, f in enumerate(e.faults):
        out += _numbers(dict(f.params), f"faults[{i}]")
    for i, p in enumerate(e.probes):
        if isinstance(p, dict) and "interval" in p:
            out += _finite(p["interval"], f"probes[{i}].interval")
    if e.target is not None:
        out += _numbers(dict(e.target.params), "target")
    if not isinstance(e.name, str):
        out.append(f"name is {e.name!r}")
    return out


def game_day_problems(day: Any) -> list[str]:
    out: list[str] = []
    for m, v in day.abort.items():
        out += _finite(v, f"day abort {m}")
    for s in day.steps:
        out += _finite(s.pause, f"step {s.name} pause")
        out += [f"step {s.name}: {p}" for p in experiment_problems(s.experiment)]
    return out


def export_problems(out_file: Path) -> list[str]:
    if not out_file.is_file():
        return ["exit 0 but nothing written"]
    text = out_file.read_text(encoding="utf-8")

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:
        data = json.loads(text, parse_constant=refuse)
    except ValueError as exc:
        return [f"not strict JSON: {exc}"]
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    try:
        import logging

        logging.disable(logging.CRITICAL)
        ensure_experiment_is_valid(data)
    except ChaosException as exc:
        return [f"chaos validate would refuse it: {exc}"]
    return []
