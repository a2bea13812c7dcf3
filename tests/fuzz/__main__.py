"""`python -m fuzz` (with PYTHONPATH=.:tests): the long fuzz run, `make fuzz`.

    python -m fuzz --count 100000 --jobs 2 --seed 1 --findings fuzz-findings/
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from fuzz.driver import Summary, run


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    p.add_argument("--count", type=int, default=100_000, help="inputs to try (default 100000)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", type=int, default=0, help="first case index (to resume)")
    p.add_argument("--findings", default="fuzz-findings", help="where each finding's input is saved")
    args = p.parse_args()

    def progress(s: Summary) -> None:
        print(s.line(), file=sys.stderr, flush=True)

    summary = run(args.seed, args.count, args.jobs, args.seconds, args.start, Path(args.findings), progress)
    print(summary.line())
    print("by family (inputs / accepted by some command):",
          ", ".join(f"{k} {v}/{summary.accepted[k]}" for k, v in sorted(summary.families.items())))
    groups = Counter((f["kind"], f.get("family", "?"), f["command"], f["detail"].strip().splitlines()[-1][:160])
                     for f in summary.findings)
    for (kind, family, command, last), n in groups.most_common(60):
        print(f"{n:6d}  {kind:9s} {family:15s} {command:8s} {last}")
    return 1 if summary.findings else 0


if __name__ == "__main__":
    sys.exit(main())
