"""The host side of `memory-limit`: put one process in a memory cgroup of its own (cgroup v1, under the
cgroup it is in now) with a limit, and take it out again. Run on the host as

    python -m chaoslab.faults.memory_cgroup cap --pid 4242 --limit 268435456 --cgroup /A/chaoslab-m0-1a2b3c4d
    python -m chaoslab.faults.memory_cgroup release --cgroup /A/chaoslab-m0-1a2b3c4d

Each prints one JSON object. `cap` moves the process (every thread) into the new cgroup after setting its
limit; the pages it holds stay charged where they were (kernels since 6.x refuse
`memory.move_charge_at_immigrate`), so the limit is headroom: what the process may add before the kernel's
OOM killer ends it. `release` reads what the cgroup saw (peak usage, failed charges, OOM kills), moves any
process still in it back to the parent and removes it; a cgroup already gone is fine (idempotent: the
dead-man's switch and `chaoslab recover` run it too). `cap` also turns the OOM killer on in the new
cgroup (a v1 child inherits `oom_kill_disable` from its parent: the process would freeze instead) and,
where swap is accounted, limits memory + swap alike (else it would swap instead of being killed).

Short-lived, no shell: the paths are checked (`cgroup_dir`) and written directly.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path("/sys/fs/cgroup/memory")
"""Where the cgroup v1 memory hierarchy is mounted."""
_PATH = re.compile(r"^(/[A-Za-z0-9_.:@=+-]+)*/chaoslab-[a-z0-9-]{1,40}$")
RMDIR_TIMEOUT = 5.0
"""Seconds the kernel may take to let go of a cgroup whose last process just left or died."""


def memory_cgroup(proc_cgroup: str) -> str:
    """The memory controller's path in the text of /proc/PID/cgroup (cgroup v1: `4:memory:/a/b`).

        >>> memory_cgroup("5:cpu,cpuacct:/x\\n4:memory:/process_api/ab12\\n")
        '/process_api/ab12'
    """
    for line in proc_cgroup.splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if "memory" in controllers.split(","):
            return path or "/"
    raise ValueError("no cgroup v1 memory controller for the process (cgroup v2 or none: not supported)")


def cgroup_dir(cgroup: str) -> Path:
    """The directory of one of chaoslab's cgroups (its last component `chaoslab-…`), refusing anything else."""
    if not _PATH.match(cgroup) or "/../" in f"{cgroup}/" or "/./" in f"{cgroup}/":
        raise ValueError(f"{cgroup!r} is not a chaoslab memory cgroup path")
    return ROOT / cgroup.lstrip("/")


def cap(pid: int, limit: int, cgroup: str) -> dict[str, Any]:
    d = cgroup_dir(cgroup)
    rss = _rss(pid)
    d.mkdir()
    try:
        (d / "memory.limit_in_bytes").write_text(str(limit))
        if (d / "memory.memsw.limit_in_bytes").exists():  # with swap, memory + swap: else it swaps, not dies
            (d / "memory.memsw.limit_in_bytes").write_text(str(limit))
        (d / "memory.oom_control").write_text("0")  # the OOM killer on, whatever the parent says
        (d / "cgroup.procs").write_text(str(pid))
    except OSError:
        d.rmdir()
        raise
    return {"cgroup": cgroup, "pid": pid, "limit": limit, "rss": rss}


def release(cgroup: str) -> dict[str, Any]:
    """Idempotent, and safe beside another release of the same cgroup (the switch firing during the
    revert): a cgroup that disappears underneath is gone, which is what both wanted."""
    d = cgroup_dir(cgroup)
    if not d.exists():
        return {"cgroup": cgroup, "gone": True}
    stats = {"cgroup": cgroup, "gone": False, "maxUsage": _int(d / "memory.max_usage_in_bytes"),
             "failcnt": _int(d / "memory.failcnt"), "oomKills": _oom_kills(d / "memory.oom_control")}
    back = d.parent / "cgroup.procs"
    deadline = time.monotonic() + RMDIR_TIMEOUT
    while True:
        try:
            for pid in (d / "cgroup.procs").read_text().split():
                try:
                    back.write_text(pid)
                except ProcessLookupError:  # it ended meanwhile
                    pass
            d.rmdir()
            return stats
        except FileNotFoundError:  # removed by the other release meanwhile: what was read still holds
            return stats
        except OSError:  # EBUSY: a process still in it, or one that died and is not reaped yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _oom_kills(path: Path) -> int | None:
    try:
        fields = dict(line.split() for line in path.read_text().splitlines() if len(line.split()) == 2)
    except OSError:
        return None
    return int(fields["oom_kill"]) if fields.get("oom_kill", "").isdigit() else None


def _rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaoslab.faults.memory_cgroup")
    sub = parser.add_subparsers(dest="action", required=True)
    c = sub.add_parser("cap", help="move PID into a new cgroup with a memory limit")
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--limit", type=int, required=True, help="bytes")
    c.add_argument("--cgroup", required=True)
    r = sub.add_parser("release", help="move its processes back to the parent and remove the cgroup")
    r.add_argument("--cgroup", required=True)
    args = parser.parse_args(argv)
    try:
        out = cap(args.pid, args.limit, args.cgroup) if args.action == "cap" else release(args.cgroup)
    except (OSError, ValueError) as exc:
        print(f"memory_cgroup {args.action}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
