"""Benchmark: etcd time to a new leader after the leader is isolated, per raft configuration.

For each configuration (pre-vote off at the first election timeout is the reference; then pre-vote on;
then both again for every further `--election-timeout`) a lab of its own is brought up (`small` profile,
3 hosts, no simulated nodes, to spare the CPU) and the engine runs experiments/etcd-leader-isolation.yaml
`--runs` times, shortened (`--duration` of isolation, `--settle` of steady state afterwards) and with only
the etcd, apiserver and writes probes. Each run is measured as `chaoslab run` would (chaoslab.judge.measure):
etcdTimeToNewLeader (inject → first etcd sample of a higher term with a leader; the probe polls every
100 ms), etcdLeaderElections (a second one is the isolated member disrupting the new leader when the
partition heals), the raft term increase over the run, and lostWrites. Prints a table with medians, p95
and max next to the configured timings, and the ratio of each median to the reference's. The lab is
brought down after each configuration, also on error or Ctrl-C.
Run as root with the binaries installed: `python bench/leader_isolation.py [--runs 10] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chaoslab.errors import ChaoslabError
from chaoslab.execute.executor import Execution, RunAborted, run_lock
from chaoslab.execute.rundir import RunDir
from chaoslab.judge.measure import measure
from chaoslab.lab.config import EtcdTimings, LabConfig, LabLayout
from chaoslab.lab.install import find_binaries
from chaoslab.lab.lifecycle import down, up
from chaoslab.plan.guard import Settings
from chaoslab.plan.planner import make_plan
from chaoslab.spec import load
from chaoslab.targets.lab import LabTarget
from chaoslab.timeline import Timeline

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "etcd-leader-isolation.yaml"
PROBES: list[dict[str, Any]] = [{"kind": "etcd", "interval": 0.1}, {"kind": "apiserver", "interval": 0.25},
                                {"kind": "writes"}]
out = Console(width=None if sys.stdout.isatty() else 200)  # a table of 12 columns; logs are wide


def p95(values: list[float]) -> float:
    """Linear interpolation between the order statistics (`statistics.quantiles`, inclusive): with 10 runs
    it lies between the 9th and 10th smallest value, 55 % of the way, so it is close to the maximum."""
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


@dataclass
class Result:
    label: str
    etcd: EtcdTimings
    runs: list[dict[str, Any]] = field(default_factory=list)
    """Per run: the measured values, or `aborted` with the reason."""
    load: list[float] = field(default_factory=list)
    """1-minute load average before and after the configuration's runs."""
    seconds: float = 0.0
    run_dir: str = ""

    def values(self, metric: str) -> list[float]:
        return [r[metric] for r in self.runs if r.get(metric) is not None]


def term_increase(timeline: Timeline) -> int | None:
    """Highest raft term seen over the run minus the highest seen before the fault was injected."""
    inject = timeline.events_of("inject")
    terms = [(s.t, s.values["term"]) for s in timeline.samples_of("etcd") if s.values.get("term") is not None]
    if not inject or not terms:
        return None
    before = [term for t, term in terms if t < inject[0].t]
    return max(term for _, term in terms) - max(before) if before else None


def bench_config(result: Result, args: argparse.Namespace, runs_root: Path) -> None:
    config = LabConfig(name=args.lab, port_base=args.port_base, profile="small", hosts=3, nodes=0,
                       etcd=result.etcd)
    layout = LabLayout(config)
    down(layout)
    started = time.monotonic()
    try:
        up(config, find_binaries(), timeout=240)
        out.print(f"[bold]{result.label}[/]: lab up in {time.monotonic() - started:.1f} s "
                  f"(load {os.getloadavg()[0]:.2f})")
        result.load.append(os.getloadavg()[0])
        target = LabTarget(layout)
        exp = dataclasses.replace(load(EXPERIMENT)[0], duration=args.duration, settle=args.settle,
                                  runs=args.runs, probes=("etcd", "apiserver", "writes"))
        run_dir = RunDir.create(runs_root, exp.name)
        result.run_dir = str(run_dir.path)
        plan = make_plan(exp, target, PROBES, settings=Settings(), yes=False)
        plan.refuse()
        runner = Execution(plan, target, run_dir)
        with run_lock(target, run_dir):
            for i in range(1, args.runs + 1):
                try:
                    tl = runner.run_once(i)
                except RunAborted as exc:
                    result.runs.append({"aborted": str(exc)})
                    out.print(f"  run {i}: aborted: {exc}")
                    continue
                v = measure(tl, exp.steady_state, exp.settle, target.renewal_window).values
                run = {k: v[k] for k in ("etcdTimeToNewLeader", "etcdLeaderElections", "etcdTimeWithoutLeader",
                                         "lostWrites", "failedWrites", "recoveryAfterRevert")}
                run["termIncrease"] = term_increase(tl)
                result.runs.append(run)
                ttnl = run["etcdTimeToNewLeader"]
                rec = run["recoveryAfterRevert"]
                out.print(f"  run {i}: new leader {'-' if ttnl is None else f'{ttnl * 1000:.0f} ms'}, "
                          f"elections {_g(run['etcdLeaderElections'])}, term +{run['termIncrease']}, "
                          f"lost writes {_g(run['lostWrites'])}, "
                          f"steady again {'-' if rec is None else f'{rec:.1f} s'} after heal")
        result.load.append(os.getloadavg()[0])
    finally:
        down(layout)
        result.seconds = time.monotonic() - started


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _ms(values: list[float], how: str) -> str:
    if not values:
        return "-"
    x = {"median": statistics.median, "p95": p95, "max": max}[how](values)
    return f"{x * 1000:.0f} ms"


def _count(values: list[float]) -> str:
    return f"{statistics.median(values):g} / {max(values):g}" if values else "-"


COLUMNS = ("config", "election timeout", "heartbeat", "runs", "median", "p95", "max", "elections med/max",
           "runs with 2+ elections", "term +med/max", "no leader med", "failed writes med", "steady after heal med",
           "lost writes", "median vs ref")


def rows(results: list[Result]) -> list[list[str]]:
    ref = results[0].values("etcdTimeToNewLeader")
    out = []
    for r in results:
        ttnl, elections = r.values("etcdTimeToNewLeader"), r.values("etcdLeaderElections")
        aborted = sum("aborted" in run for run in r.runs)
        ratio = f"{statistics.median(ttnl) / statistics.median(ref):.2f}" if ttnl and ref else "-"
        failed = r.values("failedWrites")
        out.append([r.label, f"{r.etcd.election_ms} ms", f"{r.etcd.heartbeat_ms} ms",
                    f"{len(ttnl)}" + (f" ({aborted} aborted)" if aborted else ""),
                    _ms(ttnl, "median"), _ms(ttnl, "p95"), _ms(ttnl, "max"), _count(elections),
                    f"{sum(e >= 2 for e in elections)}/{len(elections)}", _count(r.values("termIncrease")),
                    _ms(r.values("etcdTimeWithoutLeader"), "median"),
                    f"{statistics.median(failed):g}" if failed else "-",
                    _ms(r.values("recoveryAfterRevert"), "median"), f"{sum(r.values('lostWrites')):g}",
                    "1.00 (ref)" if r is results[0] else ratio])
    return out


def table(results: list[Result]) -> Table:
    t = Table(title="etcd leader isolation: time to new leader")
    for col in COLUMNS:
        t.add_column(col, justify="left" if col == "config" else "right")
    for row in rows(results):
        t.add_row(*row)
    return t


def markdown(results: list[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows(results)])


def to_json(results: list[Result], args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    return {"duration": args.duration, "settle": args.settle, "runs": args.runs, "cpus": os.cpu_count(),
            "seconds": round(seconds, 1),
            "configs": [{"label": r.label, "etcd": dataclasses.asdict(r.etcd), "load": r.load,
                         "seconds": round(r.seconds, 1), "run_dir": r.run_dir if args.runs_dir else None,
                         "runs": r.runs} for r in results]}


def from_json(data: dict[str, Any]) -> list[Result]:
    return [Result(c["label"], EtcdTimings(**c["etcd"]), c["runs"], c["load"], c["seconds"], c.get("run_dir") or "")
            for c in data["configs"]]


def report(results: list[Result], duration: float, settle: float, runs: int, seconds: float,
           as_markdown: bool = False) -> None:
    done = [r for r in results if r.runs]
    if not done:
        return
    if as_markdown:
        print(markdown(done))
    else:
        out.print(table(done))
    out.print(f"Reference: the first row. p95 of {runs} runs is interpolated between the two largest values "
              f"(statistics.quantiles, inclusive): a rough figure, close to the max. Time to new leader is "
              f"inject → first etcd probe sample (every 100 ms) of a higher term with a leader. Elections: "
              f"leader changes seen; 2 means the isolated member disrupted the new leader on heal. No leader: "
              f"time no reachable member named a leader.")
    loads = ", ".join(f"{r.label} {r.etcd.election_ms} ms: " + "/".join(f"{x:.2f}" for x in r.load) for r in done)
    out.print(f"isolation {duration:g} s, settle {settle:g} s; load average (1 min) before/after each config: "
              f"{loads}; total {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="isolations per configuration (default 10)")
    parser.add_argument("--election-timeout", type=int, nargs="+", default=[1000], metavar="MS",
                        help="election timeouts to try, each with pre-vote off and on; heartbeat is a tenth "
                             "(etcd's default ratio). Default 1000")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds the leader stays isolated (6)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of steady state after heal (2)")
    parser.add_argument("--lab", default="bench")
    parser.add_argument("--port-base", type=int, default=21443)
    parser.add_argument("--json", type=Path, default=None, help="also write every run's values here")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="keep the run directories (timelines) here; default: a temporary directory")
    parser.add_argument("--show", type=Path, default=None, metavar="JSON",
                        help="print the table of an earlier --json file instead of measuring")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    if args.show:
        data = json.loads(args.show.read_text())
        report(from_json(data), data["duration"], data["settle"], data["runs"], data["seconds"], args.markdown)
        return
    results = [Result(f"pre-vote {'on' if pv else 'off'}", EtcdTimings(heartbeat_ms=ms // 10, election_ms=ms,
                                                                        pre_vote=pv))
               for ms in args.election_timeout for pv in (False, True)]
    started = time.monotonic()
    out.print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as tmp:
        runs_root = args.runs_dir or Path(tmp)
        try:
            for r in results:
                bench_config(r, args, runs_root)
        except (ChaoslabError, KeyboardInterrupt) as exc:
            out.print(f"[red]stopped:[/] {exc or 'interrupted'}; showing what was measured")
    seconds = time.monotonic() - started
    report(results, args.duration, args.settle, args.runs, seconds, args.markdown)
    if args.json:
        args.json.write_text(json.dumps(to_json(results, args, seconds), indent=1))
        out.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
