"""Fidelity benchmark: chaoslab's measurements against the components' own records.

Runs shipped experiments on a running lab, each `--runs` times, through the engine (`Runner.run_once`,
the probes of the experiment, `measure` as `chaoslab run` does), with the `records` probe reading the
components' logs at the end of each run (etcd's "became leader at term N", kube-scheduler's and
kube-controller-manager's "successfully acquired lease"). For every leader metric it prints the error
distribution (measured − truth), whether every count equals the records and every reported time's bracket
contains the truth, and the bracket widths. It also counts the probes' requests (samples per second, over
the whole run and in the busiest second) and the CPU seconds of etcd and kube-apiserver per run.

`--pace fixed` samples as chaoslab did before pacing (etcd every 100 ms, apiserver every 250 ms, no Lease
reads), for the before/after comparison. Needs a running HA lab:

    python bench/detection_delay.py --lab fid --runs 10 --json fidelity.json
    python bench/detection_delay.py --show fidelity.json --markdown
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
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaoslab.execute.executor import Execution, RunAborted, run_lock
from chaoslab.execute.rundir import RunDir
from chaoslab.judge.groundtruth import acquired_at
from chaoslab.judge.measure import measure
from chaoslab.plan.guard import Settings
from chaoslab.plan.planner import make_plan
from chaoslab.probes.apiserver import ApiserverProbe
from chaoslab.probes.etcd import EtcdProbe
from chaoslab.probes.lease import LeaseProbe
from chaoslab.spec import load
from chaoslab.spec.serialize import experiment_from_json
from chaoslab.targets.lab import LabTarget
from chaoslab.timeline import Timeline

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
#: experiment → fault duration used here (seconds): long enough for the takeover, short enough for 10 runs.
SHIPPED = {"etcd-leader-kill": 10.0, "etcd-leader-isolation": 8.0, "scheduler-leader-kill": 26.0,
           "controller-manager-leader-kill": 26.0, "apiserver-kill": 10.0}
METRICS = ("etcdLeaderElections", "etcdTimeToNewLeader", "schedulerLeaderElections", "schedulerTimeToNewLeader",
           "controllerManagerLeaderElections", "controllerManagerTimeToNewLeader")
#: Readiness of the apiserver an experiment killed, against the signal (`readiness`).
READINESS = ("apiserverNotReady",)
CPU_OF = ("etcd", "kube-apiserver")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def fixed_pace() -> None:
    """Sample as before pacing: one fixed interval per probe, no Lease reads."""
    EtcdProbe.fast_interval = EtcdProbe.interval
    ApiserverProbe.fast_interval = ApiserverProbe.host_fast_interval = ApiserverProbe.interval
    LeaseProbe.expect_window = 0.0


def cpu_seconds(target: LabTarget) -> dict[str, float]:
    """pid → utime + stime (seconds) of every etcd and kube-apiserver process now."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for component in CPU_OF:
        for host in target.hosts(component):
            pid = target.pid(component, host)
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            out[f"{component}@{host}:{pid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def load_figures(tl: Timeline) -> dict[str, float]:
    """Requests per second of the polling probes: over the run, and in the busiest second."""
    out: dict[str, float] = {}
    span = max(tl.end, 1e-9)
    for probe, keep in (("etcd", lambda v: True), ("apiserver", lambda v: True),
                        ("lease", lambda v: v.get("via") == "list")):
        times = [s.t for s in tl.samples_of(probe) if keep(s.values)]
        if probe == "lease":  # one LIST answers for both Leases
            times = sorted(set(times))
        per_second = Counter(int(t) for t in times)
        out[f"{probe} req/s"] = round(len(times) / span, 1)
        out[f"{probe} peak req/s"] = float(max(per_second.values(), default=0))
    return out


def acquire_times(tl: Timeline, inject: float) -> dict[str, float]:
    """TimeToNewLeader metric → the new holder's acquireTime (s after the injection), from the Lease."""
    out = {}
    for lease, prefix in (("kube-scheduler", "scheduler"), ("kube-controller-manager", "controllerManager")):
        won = [s for s in tl.samples_of("records") if s.values.get("component") == lease and s.t >= inject]
        at = acquired_at(tl, lease, str(won[0].values.get("host")), inject) if won else None
        if at is not None:
            out[f"{prefix}TimeToNewLeader"] = round(at - inject, 4)
    return out


def supervisor_starts(state_dir: Path | None) -> list[tuple[float, str]]:
    """(wall time, process id) of every start the lab's supervisor recorded (its `events.jsonl`)."""
    path = state_dir / "events.jsonl" if state_dir else None
    if path is None or not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "start":
            out.append((float(e["time"]), str(e["id"])))
    return out


def readiness(tl: Timeline, starts: list[tuple[float, str]]) -> dict[str, Any]:
    """A killed apiserver's readiness, by its own endpoint's samples, against the records: it was ready until
    SIGKILL (the kernel ends the process on delivery), sent after the run's inject event and before
    `process-signalled` (chaoslab's records before and after the call), so the first not-ready sample's
    delay after `process-signalled` is the probe's detection delay, and the bracket (last ready, first not
    ready) must meet the signal's window. Ready again has no record (kube-apiserver 1.20 logs no line
    when /readyz turns 200): its bracket width is the uncertainty, and it cannot lie before the supervisor's
    start record of the new process."""
    inject = min((e.t for e in tl.events_of("inject")), default=0.0)
    signalled = [e for e in tl.events_of("process-signalled")
                 if str(e.detail.get("target", "")).startswith("kube-apiserver@")]
    if not signalled:
        return {}
    sig = signalled[0]
    # The signal was sent after the inject event (recorded before the fault goes in) and before its own
    # event (recorded once the call returned): it lies in [inject, sig.t].
    sent_after = max((e.t for e in tl.events_of("inject") if e.t <= sig.t), default=sig.t)
    host = str(sig.detail["target"]).split("@", 1)[1]
    samples = tl.samples_of("apiserver", host)
    series = [(s.t, bool(s.values.get("ready"))) for s in samples]
    rtt = {s.t: float(s.values.get("rtt") or 0.0) for s in samples}
    last_ready = max((t for t, ok in series if ok and t <= sig.t), default=None)
    first_bad = min((t for t, ok in series if not ok and t >= (last_ready or 0.0)), default=None)
    out: dict[str, Any] = {}
    if last_ready is not None and first_bad is not None:
        metric = "apiserverNotReady"
        out["values"] = {metric: round(first_bad - inject, 4)}
        out["brackets"] = {metric: (round(last_ready - inject, 4), round(first_bad - inject, 4))}
        out["truth"] = {metric: round(sig.t - inject, 4)}
        # A sample shows the state at some moment of its round trip: the first not-ready one proves the kill
        # before its answer came, not before it was sent.
        out["disagreements"] = ([] if max(last_ready, sent_after) <= min(first_bad + rtt[first_bad], sig.t) + 0.001 else
                                [(f"{metric}: signal in {sent_after:.3f}–{sig.t:.3f} s, outside the bracket "
                                 f"{last_ready:.3f}–{first_bad:.3f} s")])
        again = min((t for t, ok in series if ok and t > first_bad), default=None)
        if again is not None:
            before = max(t for t, ok in series if not ok and t < again)
            started = [w - tl.started_wall for w, pid in starts
                       if pid == f"kube-apiserver@{host}" and tl.started_wall + sig.t < w]
            out["ready again"] = {"bracket": round(again - before, 4),
                                  "after start": round(again - started[0], 4) if started else None,
                                  "start within": bool(started) and started[0] <= again}
    return out


def row_of(name: str, i: int, m: Any, seconds: float, cpu: float, tl: Timeline,
           starts: Sequence[tuple[float, str]] = ()) -> dict[str, Any]:
    inject = min((e.t for e in tl.events_of("inject")), default=0.0)
    ready = readiness(tl, list(starts))
    unavailable = m.brackets.get("apiserverUnavailable")
    return {"experiment": name, "run": i, "seconds": round(seconds, 1),
            "values": {**{k: m.values.get(k) for k in METRICS}, **ready.get("values", {})},
            "brackets": {**{k: m.brackets[k] for k in METRICS if k in m.brackets}, **ready.get("brackets", {})},
            "truth": {**{k: v for k, v in m.truth.items() if k in METRICS}, **ready.get("truth", {})},
            "acquired": acquire_times(tl, inject),
            "apiserverUnavailable": [m.values.get("apiserverUnavailable"), unavailable],
            "ready again": ready.get("ready again"),
            "disagreements": [*m.disagreements, *ready.get("disagreements", [])], "cpu": round(cpu / seconds, 3),
            **load_figures(tl)}


def remeasure(root: Path, previous: dict[str, Any]) -> dict[str, Any]:
    """Measure the saved timelines of an earlier benchmark again (after a change to the measurements), keeping
    the CPU figures and run lengths that only the live run could take."""
    kept = {(r["experiment"], r.get("run")): r for r in previous["results"]}
    results = []
    for run_dir in sorted(root.iterdir()):
        saved = run_dir / "experiment.json"
        exp = (experiment_from_json(json.loads(saved.read_text())) if saved.exists() else
               load(EXPERIMENTS / f"{run_dir.name.split('-', 2)[2]}.yaml")[0])
        for path in sorted((run_dir / "runs").glob("*/timeline.jsonl"), key=lambda p: int(p.parent.name)):
            tl, i = Timeline.load(path), int(path.parent.name)
            old = kept.get((exp.name, i), {})
            if "aborted" in old or not tl.events_of("inject"):
                continue
            m = measure(tl, exp.steady_state, exp.settle, previous.get("renewal_window", 5.0))
            seconds = float(old.get("seconds") or tl.end)
            results.append(row_of(exp.name, i, m, seconds, float(old.get("cpu", 0.0)) * seconds, tl))
    return {**previous, "results": results}


def run_experiment(name: str, runs: int, target: LabTarget, root: Path) -> list[dict[str, Any]]:
    exp = dataclasses.replace(load(EXPERIMENTS / f"{name}.yaml")[0], duration=SHIPPED[name], runs=runs)
    run_dir = RunDir.create(root, exp.name)
    run_dir.write_experiment(exp)
    plan = make_plan(exp, target, settings=Settings(), yes=False)
    plan.refuse()
    runner = Execution(plan, target, run_dir)
    results = []
    with run_lock(target, run_dir):
        for i in range(1, runs + 1):
            before = cpu_seconds(target)
            started = time.monotonic()
            try:
                tl = runner.run_once(i)
            except RunAborted as exc:
                results.append({"experiment": name, "aborted": str(exc)})
                print(f"  {name} run {i}: aborted: {exc}", flush=True)
                continue
            after = cpu_seconds(target)
            seconds = time.monotonic() - started
            m = measure(tl, exp.steady_state, exp.settle, target.renewal_window)
            cpu = sum(after[k] - before[k] for k in after if k in before)
            row = row_of(name, i, m, seconds, cpu, tl, supervisor_starts(target.layout.state_dir))
            results.append(row)
            errs = [f"{k} {1000 * (row['values'][k] - t):+.0f} ms" for k, t in row["truth"].items()
                    if not k.endswith("Elections") and row["values"].get(k) is not None]
            counts = [f"{k} {row['values'][k]:g}/{t:g}" for k, t in row["truth"].items() if k.endswith("Elections")]
            print(f"  {name} run {i}: {', '.join(errs + counts)}"
                  + (f"  DISAGREE: {m.disagreements}" if m.disagreements else ""), flush=True)
            # Let the supervisor bring the killed process back before the next run's steady state.
            time.sleep(3)
    return results


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in dict.fromkeys(r["experiment"] for r in results):
        done = [r for r in results if r["experiment"] == name and "aborted" not in r]
        aborted = sum(1 for r in results if r["experiment"] == name and "aborted" in r)
        for metric in (*METRICS, *READINESS):
            have = [r for r in done if metric in r["truth"] and r["values"].get(metric) is not None]
            if not have:
                continue
            row: dict[str, Any] = {"experiment": name, "metric": metric, "runs": len(done), "aborted": aborted,
                                   "with truth": len(have)}
            if metric.endswith("Elections"):
                row["counts equal"] = sum(r["values"][metric] == r["truth"][metric] for r in have)
            else:
                errors = [r["values"][metric] - r["truth"][metric] for r in have]
                widths = [r["brackets"][metric][1] - r["brackets"][metric][0] for r in have if metric in r["brackets"]]
                acquired = [r["values"][metric] - r["acquired"][metric] for r in have if metric in r.get("acquired", {})]
                row.update({
                    "error median ms": round(1000 * statistics.median(errors), 1),
                    "error p95 ms": round(1000 * p95(errors), 1),
                    "|error| median ms": round(1000 * statistics.median(abs(e) for e in errors), 1),
                    "|error| p95 ms": round(1000 * p95([abs(e) for e in errors]), 1),
                    "error max ms": round(1000 * max(errors, key=abs), 1),
                    "bracket median ms": round(1000 * statistics.median(widths), 1) if widths else None,
                    "bracket max ms": round(1000 * max(widths), 1) if widths else None,
                    "vs acquireTime median ms": round(1000 * statistics.median(acquired), 1) if acquired else None,
                    "vs acquireTime max ms": round(1000 * max(acquired, key=abs), 1) if acquired else None,
                    "records agree": sum(not any(d.startswith(f"{metric}:") for d in r["disagreements"])
                                         for r in have)})
            rows.append(row)
    return rows


def load_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in dict.fromkeys(r["experiment"] for r in results):
        done = [r for r in results if r["experiment"] == name and "aborted" not in r]
        if not done:
            continue
        row: dict[str, Any] = {"experiment": name, "runs": len(done)}
        for key in ("etcd req/s", "etcd peak req/s", "apiserver req/s", "apiserver peak req/s", "lease req/s",
                    "lease peak req/s", "cpu"):
            row[key] = round(statistics.median(r[key] for r in done), 2)
        out.append(row)
    return out


def readiness_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`apiserverUnavailable` (the load-balanced endpoint, as judged) and a killed apiserver's ready-again
    bracket, per experiment."""
    out = []
    for name in dict.fromkeys(r["experiment"] for r in results):
        done = [r for r in results if r["experiment"] == name and "aborted" not in r and "apiserverUnavailable" in r]
        if not done:
            continue
        values = [r["apiserverUnavailable"][0] for r in done if r["apiserverUnavailable"][0] is not None]
        widths = [b[1] - b[0] for r in done if (b := r["apiserverUnavailable"][1])]
        again = [r["ready again"] for r in done if r.get("ready again")]
        row: dict[str, Any] = {"experiment": name, "runs": len(done)}
        if values:
            row["apiserverUnavailable median s"] = round(statistics.median(values), 3)
            row["max s"] = round(max(values), 3)
        if widths:
            row["its bracket median ms"] = round(1000 * statistics.median(widths), 1)
            row["its bracket max ms"] = round(1000 * max(widths), 1)
        if again:
            row["ready-again bracket median ms"] = round(1000 * statistics.median(a["bracket"] for a in again), 1)
            row["ready-again bracket max ms"] = round(1000 * max(a["bracket"] for a in again), 1)
            row["ready again − start median s"] = round(statistics.median(
                a["after start"] for a in again if a["after start"] is not None), 3)
            row["after the start record"] = f"{sum(a['start within'] for a in again)}/{len(again)}"
        out.append(row)
    return out


def table(rows: list[dict[str, Any]], markdown: bool) -> str:
    if not rows:
        return "(nothing measured)"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[str(r.get(k, "")) for k in keys] for r in rows]
    if markdown:
        return "\n".join(["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
                         + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in [keys, *cells])


def show(data: dict[str, Any], markdown: bool) -> None:
    print(f"pace: {data['pace']}; lab {data['lab']}; {data['started']}")
    print(table(summarise(data["results"]), markdown))
    print()
    counts = [(r["experiment"], k) for r in data["results"] if "aborted" not in r for k, t in r["truth"].items()
              if k.endswith("Elections") and r["values"].get(k) != t]
    print(f"counts different from the records: {len(counts)} {counts if counts else ''}")
    print()
    print(table(readiness_rows(data["results"]), markdown))
    print()
    print(table(load_rows(data["results"]), markdown))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lab", default="lab")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--experiments", nargs="*", default=list(SHIPPED), choices=list(SHIPPED))
    parser.add_argument("--pace", choices=("paced", "fixed"), default="paced")
    parser.add_argument("--json", type=Path, default=None, help="write every run's figures here")
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--show", type=Path, default=None, help="print a saved result and exit")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--remeasure", type=Path, default=None, metavar="RUNS_DIR",
                        help="with --show: measure the saved timelines under RUNS_DIR again")
    args = parser.parse_args()
    if args.show:
        data = json.loads(args.show.read_text())
        show(remeasure(args.remeasure, data) if args.remeasure else data, args.markdown)
        return
    if args.pace == "fixed":
        fixed_pace()
    target = LabTarget.running(args.lab)
    root = args.runs_dir or Path(tempfile.mkdtemp(prefix="chaoslab-fidelity-"))
    data: dict[str, Any] = {"pace": args.pace, "lab": args.lab, "renewal_window": target.renewal_window, "started": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                         time.gmtime()),
                            "results": []}
    try:
        for name in args.experiments:
            data["results"] += run_experiment(name, args.runs, target, root)
            if args.json:
                args.json.write_text(json.dumps(data, indent=1))
    finally:
        if args.json:
            args.json.write_text(json.dumps(data, indent=1))
    show(data, args.markdown)
    sys.exit(0)


if __name__ == "__main__":
    main()
