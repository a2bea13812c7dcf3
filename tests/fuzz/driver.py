"""Runs the oracle over many cases in worker processes. A worker (`python -m fuzz.driver --worker`) reads
`SEED INDEX` lines, answers one JSON line per case, runs under an address-space limit (a blow-up is a
MemoryError there, reported as a finding) and is killed and replaced when a case takes longer than
`HARD_TIMEOUT` (a hang the in-process alarm could not interrupt).

    run(seed=1, count=1000, jobs=2)  → Summary (cases, seconds, findings by family and kind)
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HARD_TIMEOUT = 60.0
"""Seconds a worker may take for one case before it is killed (the case counts as a hang)."""
MEMORY_HEADROOM = 1 << 30
"""Bytes of address space a worker may add to what it uses after start-up."""
TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


@dataclass
class Summary:
    cases: int = 0
    seconds: float = 0.0
    findings: list[dict[str, Any]] = field(default_factory=list)
    families: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    """family → inputs some command accepted (exit 0): the mutations that got past the loader."""
    max_rss_kib: int = 0

    def line(self) -> str:
        kinds = Counter(f["kind"] for f in self.findings)
        return (f"{self.cases} inputs in {self.seconds:.0f} s ({self.cases / max(self.seconds, 1e-9):.0f}/s), "
                f"{len(self.findings)} findings {dict(kinds) or ''}, worker peak RSS {self.max_rss_kib // 1024} MiB")


# ---- the worker ---------------------------------------------------------------------------------------
def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def worker() -> None:
    # The job pipe moves off fds 0 and 1: an input that names /dev/stdin or /dev/stdout must not read the
    # jobs or write into the answers.
    jobs = os.fdopen(os.dup(0), "r")
    answers = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    from fuzz.mutate import case
    from fuzz.oracle import Oracle

    oracle = Oracle(Path(os.environ["FUZZ_DIR"]))
    oracle.check(case(0, 0))  # warm up every import before the limit is set
    limit = _vm_size() + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for line in jobs:
        seed, index = map(int, line.split())
        c = case(seed, index)
        started = time.monotonic()
        try:
            findings = [f.__dict__ for f in oracle.check(c)]
        except MemoryError as exc:  # outside a command (writing the case): still a finding
            findings = [{"kind": "memory", "command": "-", "detail": repr(exc)}]
        answer = {"index": index, "family": c.family, "seconds": time.monotonic() - started,
                  "accepted": [command for command, code in getattr(oracle, "codes", []) if code == 0],
                  "findings": findings, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


# ---- the parent ---------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, n: int, root: Path) -> None:
        self.n, self.root = n, root
        self.start()

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
               "FUZZ_DIR": str(self.root / f"w{self.n}"), "COLUMNS": "120"}
        self.proc = subprocess.Popen([sys.executable, "-m", "fuzz.driver", "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, text=True, bufsize=1, cwd=REPO)
        self.index: int | None = None
        self.since = 0.0

    def send(self, seed: int, index: int) -> None:
        assert self.proc.stdin is not None
        self.index, self.since = index, time.monotonic()
        self.proc.stdin.write(f"{seed} {index}\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _save(out: Path | None, seed: int, answer: dict[str, Any]) -> None:
    if out is None:
        return
    from fuzz.mutate import case

    c = case(seed, answer["index"])
    d = out / f"{seed}-{answer['index']}"
    d.mkdir(parents=True, exist_ok=True)
    if c.content is not None:
        (d / "input").write_bytes(c.content)
    (d / "finding.json").write_text(json.dumps({**answer, "case": {"family": c.family, "seed": c.seed,
                                                                    "path": c.path, "special": c.special,
                                                                    "extra": c.extra,
                                                                    "commands": c.commands}}, indent=2))


def run(seed: int, count: int | None = None, jobs: int = 1, seconds: float | None = None, start: int = 0,
        findings_dir: Path | None = None, progress: Any = None, at_least: int = 0) -> Summary:
    """Cases `start`, `start + 1` … of run `seed`, until `count` are done or `seconds` have passed (but at
    least `at_least` of them, however slow the machine)."""
    summary = Summary()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaoslab-fuzz-") as tmp:
        workers = [_Worker(n, Path(tmp)) for n in range(jobs)]
        sel = selectors.DefaultSelector()
        for w in workers:
            assert w.proc.stdout is not None
            sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        next_index = start
        last_report = began

        def more() -> bool:
            if count is not None and next_index >= start + count:
                return False
            return next_index < start + at_least or seconds is None or time.monotonic() - began < seconds

        try:
            for w in workers:
                if more():
                    w.send(seed, next_index)
                    next_index += 1
            while any(w.index is not None for w in workers):
                for key, _ in sel.select(timeout=1.0):
                    w = key.data
                    line = w.proc.stdout.readline()
                    if not line:  # the worker died (killed by the kernel, or a crash outside the oracle)
                        answer = {"index": w.index, "family": "?", "findings": [
                            {"kind": "crash", "command": "-", "detail": f"worker exited {w.proc.wait()}"}]}
                        sel.unregister(w.proc.stdout)
                        w.start()
                        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
                    else:
                        answer = json.loads(line)
                        summary.max_rss_kib = max(summary.max_rss_kib, answer.get("rss", 0))
                    summary.cases += 1
                    summary.families[answer["family"]] += 1
                    summary.accepted[answer["family"]] += bool(answer.get("accepted"))
                    for f in answer["findings"]:
                        summary.findings.append({**f, "index": answer["index"], "family": answer["family"]})
                    if answer["findings"]:
                        _save(findings_dir, seed, answer)
                    w.index = None
                    if more():
                        w.send(seed, next_index)
                        next_index += 1
                now = time.monotonic()
                for w in workers:
                    if w.index is not None and now - w.since > HARD_TIMEOUT:
                        answer = {"index": w.index, "family": "?", "findings": [
                            {"kind": "hang", "command": "-", "detail": f"killed after {HARD_TIMEOUT:.0f} s"}]}
                        summary.cases += 1
                        summary.findings += [{**f, "index": w.index} for f in answer["findings"]]
                        _save(findings_dir, seed, answer)
                        sel.unregister(w.proc.stdout)
                        w.kill()
                        w.start()
                        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
                        if more():
                            w.send(seed, next_index)
                            next_index += 1
                if progress and now - last_report > 30:
                    last_report = now
                    summary.seconds = now - began
                    progress(summary)
        finally:
            for w in workers:
                if w.proc.stdin:
                    w.proc.stdin.close()
                w.kill()
    summary.seconds = time.monotonic() - began
    return summary


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    worker()
