"""The `chaoslab` command: argument parsing, terminal output and exit codes. No logic lives here.

Exit codes (the CI contract, docs/ci.md): 0 success (every gating SLO met), 1 a gating SLO violated,
2 invalid input or usage (and a game day outside its window), 3 could not run (infrastructure, lab, abort
or revert failure; a game day stopped by its abort conditions), 130 interrupted.
When one experiment of a file could not be carried out, the exit code is 3 even if an earlier one failed
an SLO: the file was not judged as a whole.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chaoslab import faults, targets  # noqa: F401 -- their registries add their checks to loading (spec.checks)
from chaoslab.errors import ChaoslabError, SpecError
from chaoslab.lab.config import Component, EtcdTimings, LabConfig, LabLayout, LeaderElection

EXIT_OK, EXIT_SLO_VIOLATED, EXIT_INVALID, EXIT_COULD_NOT_RUN, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

console = Console(stderr=True)
out = Console()


# ---- lab ----------------------------------------------------------------------------------------------
def _lab_config(args: argparse.Namespace) -> LabConfig:
    kw: dict[str, Any] = {"name": args.name, "profile": args.profile, "hosts": args.hosts,
                             "nodes": args.nodes, "port_base": args.port_base}
    if args.state_dir:
        kw["state_root"] = Path(args.state_dir)
    if args.lease_duration:
        kw["leader_election"] = LeaderElection(lease_duration=args.lease_duration,
                                               renew_deadline=args.lease_duration * 2 / 3,
                                               retry_period=max(0.5, args.lease_duration / 7.5))
    if args.node_monitor_grace:
        kw["node_monitor_grace"] = args.node_monitor_grace
    if args.quota_backend_bytes:
        kw["etcd_quota_bytes"] = args.quota_backend_bytes
    default = EtcdTimings()
    kw["etcd"] = EtcdTimings(heartbeat_ms=args.heartbeat_interval or default.heartbeat_ms,
                             election_ms=args.election_timeout or default.election_ms,
                             pre_vote=args.pre_vote)
    return LabConfig(**kw)


def _layout(args: argparse.Namespace) -> LabLayout:
    from chaoslab.lab.lifecycle import saved_layout

    return saved_layout(args.name, Path(args.state_dir) if args.state_dir else None)


def cmd_lab_install(args: argparse.Namespace) -> int:
    from chaoslab.lab.install import install

    install(Path(args.bin_dir) if args.bin_dir else None, console=console)
    return EXIT_OK


def cmd_lab_up(args: argparse.Namespace) -> int:
    from chaoslab.lab.install import find_binaries
    from chaoslab.lab.lifecycle import up

    config = _lab_config(args)
    bins = find_binaries(Path(args.bin_dir) if args.bin_dir else None)
    started = time.monotonic()
    with console.status(f"starting lab {args.name!r}") as status:
        layout = up(config, bins, progress=status.update, timeout=args.timeout)
    console.print(f"[green]✓[/] lab {args.name!r} ready in {time.monotonic() - started:.1f} s")
    console.print(f"  kubectl --kubeconfig {layout.kubeconfig} get nodes,leases -A")
    return cmd_lab_status(args)


def cmd_lab_down(args: argparse.Namespace) -> int:
    from chaoslab.lab.lifecycle import down

    layout = _layout(args)
    with console.status(f"stopping lab {args.name!r}") as status:
        left = down(layout, progress=status.update)
    if left:
        console.print(f"[red]lab {args.name!r} could not be removed completely:[/] " + "; ".join(left))
        return EXIT_COULD_NOT_RUN
    console.print(f"[green]✓[/] lab {args.name!r} is down; nothing left behind")
    return EXIT_OK


def _age(started: float | None) -> str:
    if not started:
        return "-"
    s = int(time.time() - started)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def cmd_lab_status(args: argparse.Namespace) -> int:
    from chaoslab.clients.etcd import MemberStatus
    from chaoslab.clients.leaders import holder_host
    from chaoslab.lab.lifecycle import supervisor_pid
    from chaoslab.lab.status import collect

    layout = _layout(args)
    if not supervisor_pid(layout):
        console.print(f"lab {args.name!r} is not running; start it with `chaoslab lab up`")
        return EXIT_COULD_NOT_RUN
    st = collect(layout)
    table = Table(title=f"lab {args.name} (supervisor pid {st.supervisor})")
    for col in ("component", "host", "state", "pid", "up", "restarts", "last exit", "role"):
        table.add_column(col)
    for p in st.processes:
        kind, _, host = p.id.partition("@")
        role = ""
        if kind == "etcd":
            s = st.etcd.get(host)
            role = ("leader" if s.is_leader else f"term {s.term}") if isinstance(s, MemberStatus) else str(s)
            role = f"{role}, term {s.term}" if isinstance(s, MemberStatus) and s.is_leader else role
        elif kind in st.leases and holder_host(st.leases[kind]) == host:
            role = "leader (Lease holder)"
        elif kind == "kube-apiserver":
            role = "ready" if st.apiservers.get(host) else "not ready"
        elif kind == "nodes":
            role = f"{st.nodes_ready}/{st.nodes_total} nodes Ready"
        table.add_row(kind, host or "-", p.state, str(p.pid or "-"), _age(p.started), str(p.restarts),
                      p.last_exit or "-", role)
    out.print(table)
    out.print(f"etcd leader: {st.etcd_leader or 'none'}   "
              + "   ".join(f"{k}: {holder_host(v) or 'none'}" for k, v in st.leases.items()))
    return EXIT_OK


def cmd_lab_kubeconfig(args: argparse.Namespace) -> int:
    layout = _layout(args)
    print(layout.kubeconfig)
    return EXIT_OK


def cmd_lab_logs(args: argparse.Namespace) -> int:
    layout = _layout(args)
    path = layout.log_file(Component(args.component, args.host))
    if not path.exists():
        known = sorted(p.stem for p in layout.log_dir.glob("*.log"))
        raise SpecError([(f"no log for {args.component}{'@' + args.host if args.host else ''}; "
                          f"known: {', '.join(known) or 'none (is the lab up?)'}")])
    lines = path.read_text(errors="replace").splitlines()
    sys.stdout.write("\n".join(lines[-args.lines:]) + "\n")
    return EXIT_OK


# ---- experiments -----------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from chaoslab.spec.loader import validate_all

    experiments, game_days, problems = validate_all([Path(p) for p in args.paths])
    for problem in problems:
        console.print(f"[red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    for exp in experiments:
        out.print(f"[green]✓[/] {escape(str(exp.source))}: {escape(exp.name)} ({len(exp.faults)} fault(s), "
                  f"{len(exp.slos)} SLO(s))", highlight=False, soft_wrap=True)
    for day in game_days:
        out.print(f"[green]✓[/] {escape(str(day.source))}: game day {escape(day.name)} ({len(day.steps)} step(s): "
                  f"{escape(', '.join(s.name for s in day.steps))})", highlight=False, soft_wrap=True)
    return EXIT_INVALID if problems else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from chaoslab.judge.gate import Policy, parse_fail_on, parse_inconclusive, parse_margin
    from chaoslab.ops.session import Publish, publish, run_file

    problems = []
    try:
        fail_on = parse_fail_on(args.fail_on)
    except SpecError as exc:
        problems += exc.problems
    try:
        margin = parse_margin(args.warn_margin)
    except SpecError as exc:
        problems += exc.problems
    if problems:
        raise SpecError(problems)
    try:
        undecided = parse_inconclusive(args.inconclusive)
    except SpecError as exc:
        raise SpecError(exc.problems) from None
    policy = Policy(fail_on, margin, undecided)
    outcomes = run_file(Path(args.file), target=args.target, runs_root=Path(args.runs_dir),
                        runs=args.runs, live=not args.no_live, console=out, policy=policy,
                        dry_run=args.dry_run, yes=args.yes)
    if args.dry_run:
        return EXIT_OK
    for o in outcomes:
        if o.error:
            console.print(f"[red]error:[/] {escape(o.experiment.name)}: {escape(str(o.error))}", highlight=False,
                          soft_wrap=True)
    if any(o.error for o in outcomes):
        code = EXIT_COULD_NOT_RUN
    else:
        code = EXIT_OK if all(o.gate is not None and o.gate.passed for o in outcomes) else EXIT_SLO_VIOLATED
    how = Publish(junit=Path(args.junit) if args.junit else None,
                  summary=Path(args.summary) if args.summary else None, report_url=args.report_url,
                  metrics_file=Path(args.metrics_file) if args.metrics_file else None,
                  pushgateway=args.pushgateway, job=args.job)
    written, failures = publish(outcomes, code, how)
    for path in written:
        out.print(f"wrote {escape(str(path))}", highlight=False, soft_wrap=True)
    if how.pushgateway and not any(how.pushgateway in f for f in failures):
        out.print(f"pushed metrics to {how.pushgateway} (job {how.job})")
    for problem in failures:
        console.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    return code


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from chaoslab.spec import load
    from chaoslab.spec.chaostoolkit import export_notes, to_chaostoolkit

    experiments = load(Path(args.file))
    if len(experiments) > 1:
        raise SpecError([(f"{args.file}: holds {len(experiments)} experiments; a Chaos Toolkit file holds "
                          "one: put each in its own file")])
    [experiment] = experiments
    try:  # strict JSON: Chaos Toolkit refuses NaN and Infinity (the loader lets no such number through)
        text = json.dumps(to_chaostoolkit(experiment), indent=2, allow_nan=False) + "\n"
    except ValueError as exc:
        raise SpecError([f"{args.file}: cannot be written as JSON ({exc})"]) from exc
    for note in export_notes(experiment):
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if args.output and args.output != "-":
        Path(args.output).write_text(text)
        console.print(f"wrote {escape(args.output)}; run it with `chaos run {escape(args.output)}` "
                      f"(another lab: --var chaoslab_target=lab:NAME)", highlight=False, soft_wrap=True)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_gameday_run(args: argparse.Namespace) -> int:
    import datetime as dt

    from rich.prompt import Confirm

    from chaoslab.ops.gameday import run_game_day
    from chaoslab.ops.notify import send
    from chaoslab.spec.gameday import load_game_day
    from chaoslab.spec.window import parse_now

    day = load_game_day(Path(args.file))
    try:
        now = parse_now(args.now) if args.now else dt.datetime.now(dt.UTC)
    except ValueError:
        raise SpecError([(f"--now: {args.now!r} is not an ISO time like 2026-05-19T11:00 (the window's time "
                         "zone) or 2026-05-19T09:00Z")]) from None
    result = run_game_day(day, target=args.target, runs_root=Path(args.runs_dir), now=now, yes=args.yes,
                          interactive=sys.stdin.isatty() and console.is_terminal,
                          ask=lambda q: Confirm.ask(q, console=console, default=False),
                          live=not args.no_live, console=out)
    code = result.exit_code
    for step in result.steps:
        if step.status == "skipped":
            console.print(f"[yellow]skipped:[/] {escape(step.name)}: {escape(step.reason)}", highlight=False,
                          soft_wrap=True)
    if result.stopped:
        console.print(f"[red]the day stopped:[/] {escape(result.stopped)}", highlight=False, soft_wrap=True)
    out.print(f"game day report: {escape(str(result.day_dir))}/report.html, summary.md, junit.xml, gameday.json",
              highlight=False, soft_wrap=True)
    sent, problems = send(day.notify, result.day_dir, code)
    for line in sent:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for problem in problems:
        console.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    return code


def cmd_report(args: argparse.Namespace) -> int:
    from chaoslab.reports import rebuild

    if (Path(args.run_dir) / "gameday.json").exists():
        from chaoslab.reports.gameday import write_day_reports

        for path in write_day_reports(Path(args.run_dir)):
            out.print(f"wrote {escape(str(path))}", highlight=False, soft_wrap=True)
        return EXIT_OK
    for path in rebuild(Path(args.run_dir)):
        out.print(f"wrote {escape(str(path))}", highlight=False, soft_wrap=True)
    return EXIT_OK


def cmd_recover(args: argparse.Namespace) -> int:
    from chaoslab.ops.session import recover_runs

    done = recover_runs(Path(args.run_dir) if args.run_dir else None, Path(args.runs_dir))
    for line in done:
        out.print(f"[green]✓[/] {escape(line)}", highlight=False, soft_wrap=True)
    if not done:
        out.print("nothing to recover: no run has a pending undo")
    return EXIT_OK


# ---- schedules and history -------------------------------------------------------------------------
def _cluster_api(args: argparse.Namespace) -> Any:
    from chaoslab.clients.kubeapi import KubeApi
    from chaoslab.targets import resolve_target

    if args.kubeconfig:
        return KubeApi.from_kubeconfig(Path(args.kubeconfig), args.context)
    return resolve_target(args.target).api()


def cmd_schedule_render(args: argparse.Namespace) -> int:
    from chaoslab.ops import schedule

    version = args.api_version
    if version in (None, "auto"):
        if args.kubeconfig or args.target:
            version = schedule.served_cronjob_version(_cluster_api(args))
            console.print(f"the cluster serves CronJob as {version}", highlight=False)
        elif version == "auto":
            raise SpecError(["--api-version auto asks the cluster: pass --kubeconfig PATH or --target lab[:NAME]"])
        else:
            version = "batch/v1"
    resources = {"requests": {"cpu": args.cpu_request, "memory": args.memory_request},
                 "limits": {"cpu": args.cpu_limit, "memory": args.memory_limit}}
    job = schedule.Job.from_file(Path(args.file), args.cron, name=args.name, namespace=args.namespace,
                                 image=args.image or schedule.DEFAULT_IMAGE, time_zone=args.time_zone, api_version=version,
                                 target=(args.run_target if args.run_target is not None else
                                         "in-cluster" if args.format == "cronjob" else "kubeconfig") or None,
                                 results_pvc=args.results_pvc,
                                 starting_deadline=args.starting_deadline,
                                 history_success=args.successful_history, history_failed=args.failed_history,
                                 active_deadline=args.active_deadline, resources=resources)
    source = args.source or args.file
    head = f"# chaoslab schedule render {args.file} --cron '{job.cron}' --format {args.format}\n"
    if args.format == "github":
        if args.time_zone:
            console.print(f"[yellow]note:[/] GitHub Actions schedules run in UTC; --time-zone {args.time_zone} "
                          "is not applied: give --cron in UTC", highlight=False)
        text = schedule.to_yaml([schedule.render_github(job, source)], head)
    elif args.format == "gitlab":
        text = schedule.to_yaml([schedule.render_gitlab(job, source)], head + schedule.gitlab_schedule_note(job))
    else:
        text = schedule.to_yaml(schedule.render_cronjob(job), head)
    if args.output and args.output != "-":
        Path(args.output).write_text(text)
        console.print(f"wrote {args.output}", markup=False, highlight=False)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from chaoslab.judge.verdict import format_value
    from chaoslab.ops.history import scan, select
    from chaoslab.reports.summary import KEY_METRICS
    from chaoslab.spec.model import METRICS

    records = select(scan(Path(args.runs_dir)), args.experiment, args.last)
    if not records:
        out.print(f"no runs{f' of {args.experiment!r}' if args.experiment else ''} under {args.runs_dir}",
                  markup=False, highlight=False)
        return EXIT_OK
    table = Table(title=f"runs under {escape(args.runs_dir)}")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("experiment", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("runs", justify="right")
    table.add_column("key numbers (median of runs)", overflow="fold", ratio=2)
    table.add_column("directory", overflow="fold", ratio=1)
    style = {"pass": "[green]pass[/]", "FAIL": "[red]FAIL[/]", "not judged": "[yellow]not judged[/]"}
    for r in records:
        numbers = [f"{m} {format_value(v, METRICS[m])}" for m in KEY_METRICS if (v := r.value(m)) is not None]
        table.add_row(r.time.strftime("%Y-%m-%d %H:%M"), escape(r.experiment), style[r.verdict], str(r.runs),
                      "\n".join(numbers[:4]) or "-", escape(f"{r.group}/{r.path.name}" if r.group else r.path.name))
    out.print(table)
    return EXIT_OK


def cmd_history_compare(args: argparse.Namespace) -> int:
    from chaoslab.judge.verdict import format_value
    from chaoslab.ops.history import compare, scan

    result = compare(scan(Path(args.runs_dir)), args.metric, experiment=args.experiment, last=args.last,
                     baseline=args.baseline, test=args.test, alpha=args.alpha, k=args.k,
                     min_change=args.min_change)
    table = Table(title=f"{args.metric} ({result.unit})")
    table.add_column("time (UTC)", no_wrap=True)
    for col in ("experiment", "role", "value", "directory"):
        table.add_column(col, overflow="fold")
    for role, rows in (("baseline", result.baseline), ("[bold]new[/]", result.candidate)):
        for r, v in rows:
            table.add_row(r.time.strftime("%Y-%m-%d %H:%M"), escape(r.experiment), role,
                          format_value(v, result.unit), escape(r.path.name))
    out.print(table)
    out.print(f"baseline median {format_value(result.baseline_median, result.unit)}, new median "
              f"{format_value(result.candidate_median, result.unit)}", highlight=False)
    if result.skipped:
        out.print(f"[dim]{len(result.skipped)} run(s) in the window did not measure {args.metric}[/]")
    out.print(f"[red]✗ {escape(result.reason)}[/]" if result.regression else f"[green]✓[/] {escape(result.reason)}",
              highlight=False, soft_wrap=True)
    return EXIT_SLO_VIOLATED if result.regression else EXIT_OK


# ---- parser -------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chaoslab", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("run", help="run an experiment and judge it against its SLOs")
    sp.add_argument("file", help="experiment YAML (full or compact form), or a Chaos Toolkit experiment "
                    "(JSON or YAML) that uses chaoslab's actions")
    sp.add_argument("--target", default=None, help="cluster: lab, lab:NAME, kubeconfig, kubeconfig:CONTEXT or "
                    "in-cluster (default: the experiment's spec.target, else the running lab)")
    sp.add_argument("--dry-run", action="store_true", help="print the plan (what would be touched, where, "
                    "commands and undo) and change nothing")
    sp.add_argument("--yes", action="store_true", help="allow a cluster that is not the lab (production-looking "
                    "contexts also need the allow-list in the config file)")
    sp.add_argument("--runs", type=int, default=None, help="override spec.runs")
    sp.add_argument("--runs-dir", default="runs", help="where run directories go (default ./runs)")
    sp.add_argument("--no-live", action="store_true", help="no live view (plain progress lines)")
    ci = sp.add_argument_group("CI gate (docs/ci.md)")
    ci.add_argument("--fail-on", default="all", metavar="all|SLO[,SLO…]",
                    help="SLO metrics whose violation fails the run (exit 1); others are reported, not gating "
                    "(default all)")
    ci.add_argument("--warn-margin", default="0", metavar="PERCENT",
                    help="warn when a met SLO is within this fraction of its limit, e.g. 10%% (default 0: off)")
    ci.add_argument("--inconclusive", default="warn", choices=("warn", "fail"),
                    help="an SLO whose measured bracket straddles its limit: warn (default, exit 0) or fail "
                    "(exit 1)")
    ci.add_argument("--junit", default=None, metavar="FILE", help="also write the JUnit XML of every "
                    "experiment of the file here (an <error> case for one that could not run)")
    ci.add_argument("--summary", default=None, metavar="FILE", help="write a Markdown summary for a "
                    "pull-request comment")
    ci.add_argument("--report-url", default=None, metavar="URL", help="link to the HTML report in the "
                    "summary; {run} is replaced by the run directory's name (default: the report's path)")
    ci.add_argument("--metrics-file", default=None, metavar="PATH", help="write Prometheus metrics for "
                    "node_exporter's textfile collector (name it *.prom)")
    ci.add_argument("--pushgateway", default=None, metavar="URL", help="push Prometheus metrics to this "
                    "Pushgateway (one group per experiment)")
    ci.add_argument("--job", default="chaoslab", help="Pushgateway job name (default chaoslab)")
    sp.set_defaults(func=cmd_run)
    gd = sub.add_parser("gameday", help="game days: a planned set of experiments, one report (docs/gamedays.md)")
    gds = gd.add_subparsers(dest="gameday", required=True)
    sp = gds.add_parser("run", help="run a game day and write its combined report")
    sp.add_argument("file", help="game day YAML (kind: GameDay)")
    sp.add_argument("--target", default=None, help="cluster: lab or lab:NAME (default: the game day's "
                    "spec.target, else each experiment's, else the running lab)")
    sp.add_argument("--yes", action="store_true", help="confirm every step that asks (recorded as "
                    "auto-confirmed); without it and without a terminal such steps are skipped")
    sp.add_argument("--now", default=None, metavar="TIME", help="check the window at this ISO time instead "
                    "of now (2026-05-19T11:00 in the window's zone, or with an offset)")
    sp.add_argument("--runs-dir", default="runs", help="where the day directory goes (default ./runs)")
    sp.add_argument("--no-live", action="store_true", help="no live view (plain progress lines)")
    sp.set_defaults(func=cmd_gameday_run)
    sp = sub.add_parser("validate", help="check experiment and game day files without touching a cluster")
    sp.add_argument("paths", nargs="+", help="files or directories")
    sp.set_defaults(func=cmd_validate)
    sp = sub.add_parser("export", help="write an experiment in another tool's format (Chaos Toolkit)")
    sp.add_argument("--to", required=True, choices=["chaostoolkit"], help="the format")
    sp.add_argument("file", help="experiment YAML")
    sp.add_argument("-o", "--output", default=None, help="output file (default: standard output)")
    sp.set_defaults(func=cmd_export)
    sp = sub.add_parser("report", help="rebuild the reports of a run (or game day) directory from its timelines")
    sp.add_argument("run_dir")
    sp.set_defaults(func=cmd_report)
    sp = sub.add_parser("recover", help="revert faults left pending by a run that was killed")
    sp.add_argument("run_dir", nargs="?", default=None, help="a run directory (default: every run under "
                    "--runs-dir with a pending undo)")
    sp.add_argument("--runs-dir", default="runs")
    sp.set_defaults(func=cmd_recover)

    sp = sub.add_parser("schedule", help="scheduled runs: a CronJob or a scheduled CI job (docs/scheduling.md)")
    sched = sp.add_subparsers(dest="schedule", required=True)
    sp = sched.add_parser("render", help="print a CronJob (with ConfigMap, ServiceAccount, RBAC) or a CI job")
    sp.add_argument("file", help="experiment or game-day YAML (told apart by its kind)")
    sp.add_argument("--cron", required=True, help="cron schedule, e.g. '0 10 * * 2' (Tuesdays 10:00)")
    sp.add_argument("--format", choices=["cronjob", "github", "gitlab"], default="cronjob")
    sp.add_argument("--name", default=None, help="object / job name (default chaoslab-<file stem>)")
    sp.add_argument("--namespace", default="chaoslab", help="namespace of the CronJob (default chaoslab)")
    sp.add_argument("--image", default=None, help="the chaoslab image (Dockerfile at the repository root)")
    sp.add_argument("--time-zone", default=None, metavar="TZ", help="IANA time zone of the schedule "
                    "(CronJob spec.timeZone: batch/v1 on Kubernetes >= 1.25; GitLab's cron_timezone)")
    sp.add_argument("--api-version", choices=["auto", "batch/v1", "batch/v1beta1"], default=None,
                    help="CronJob version: batch/v1 (Kubernetes >= 1.21), batch/v1beta1 (1.20), auto (ask the "
                    "cluster). Default: auto with --kubeconfig/--target, else batch/v1")
    sp.add_argument("--kubeconfig", default=None, help="ask this cluster which CronJob version it serves")
    sp.add_argument("--context", default=None, help="kubeconfig context")
    sp.add_argument("--target", default=None, help="ask this lab (lab or lab:NAME) instead of a kubeconfig")
    sp.add_argument("--run-target", default=None, help="`chaoslab run --target` of the scheduled run "
                    "(default: in-cluster for a CronJob, the pod's ServiceAccount; kubeconfig in CI "
                    "workflows); '' for the file's own spec.target")
    sp.add_argument("--results-pvc", default=None, metavar="CLAIM", help="write results to this "
                    "PersistentVolumeClaim (default an emptyDir, gone with the pod)")
    sp.add_argument("--starting-deadline", type=int, default=600, metavar="S",
                    help="startingDeadlineSeconds (default 600)")
    sp.add_argument("--successful-history", type=int, default=3, help="successfulJobsHistoryLimit (default 3)")
    sp.add_argument("--failed-history", type=int, default=5, help="failedJobsHistoryLimit (default 5)")
    sp.add_argument("--active-deadline", type=int, default=3 * 3600, metavar="S",
                    help="activeDeadlineSeconds of each Job, and the CI job's timeout (default 10800)")
    sp.add_argument("--cpu-request", default="100m")
    sp.add_argument("--cpu-limit", default="1")
    sp.add_argument("--memory-request", default="256Mi")
    sp.add_argument("--memory-limit", default="512Mi")
    sp.add_argument("--source", default=None, help="the file's path in the repository, for CI snippets "
                    "(default FILE as given)")
    sp.add_argument("-o", "--output", default=None, help="output file (default: standard output)")
    sp.set_defaults(func=cmd_schedule_render)

    def history_options(sp: argparse.ArgumentParser, last: int | None) -> None:
        sp.add_argument("--runs-dir", default="runs", help="the results root (default ./runs)")
        sp.add_argument("--experiment", default=None, help="only runs of this experiment (its name)")
        sp.add_argument("--last", type=int, default=last, metavar="N",
                        help=f"the newest N runs (default {last or 'all'})")

    hp = sub.add_parser("history", help="list past runs, or compare a metric across them (docs/history.md)")
    history_options(hp, None)
    hp.set_defaults(func=cmd_history)
    hsub = hp.add_subparsers(dest="history", required=False)
    sp = hsub.add_parser("list", help="list runs (the default)")
    history_options(sp, None)
    sp.set_defaults(func=cmd_history)
    sp = hsub.add_parser("compare", help="flag a regression of a metric beyond run-to-run noise (exit 1)")
    sp.add_argument("metric", help="e.g. schedulerTimeToNewLeader, recoveryTime")
    history_options(sp, 10)
    sp.add_argument("--baseline", type=int, default=None, metavar="N", help="the first N runs of the window "
                    "are the baseline, the rest are compared (default: all but the newest 3; --test mad: 1)")
    sp.add_argument("--test", choices=["mann-whitney", "mad"], default="mann-whitney",
                    help="one-sided Mann-Whitney U (default) or median + k x MAD for a single new run")
    sp.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    sp.add_argument("-k", type=float, default=3.0, help="MAD rule: how many scaled MADs (default 3)")
    sp.add_argument("--min-change", type=float, default=0.0, metavar="X",
                    help="also require the median to rise by at least X (metric's unit; default 0)")
    sp.set_defaults(func=cmd_history_compare)

    lab = sub.add_parser("lab", help="the local HA control-plane lab").add_subparsers(dest="lab", required=True)

    def lab_cmd(name: str, func: object, help: str) -> argparse.ArgumentParser:
        sp = lab.add_parser(name, help=help)
        sp.add_argument("--name", default=os.environ.get("CHAOSLAB_LAB", "lab"), help="lab name (default lab)")
        sp.add_argument("--state-dir", default=None, help="state root (default $CHAOSLAB_STATE_DIR or "
                        "~/.local/state/chaoslab/labs)")
        sp.set_defaults(func=func)
        return sp

    sp = lab_cmd("install", cmd_lab_install, "install etcd, haproxy and build the Kubernetes binaries")
    sp.add_argument("--bin-dir", default=None, help="use kube-* binaries from DIR ($CHAOSLAB_BIN_DIR)")
    sp = lab_cmd("up", cmd_lab_up, "start a lab and wait until it is ready")
    sp.add_argument("--profile", choices=["ha", "small"], default="ha")
    sp.add_argument("--hosts", type=int, default=3, help="control-plane hosts / etcd members (1, 3, 5)")
    sp.add_argument("--nodes", type=int, default=3, help="simulated worker nodes")
    sp.add_argument("--port-base", type=int, default=16443, help="first loopback port (apiserver LB)")
    sp.add_argument("--lease-duration", type=float, default=None,
                    help="leader-election lease seconds for scheduler/controller-manager (default 15)")
    sp.add_argument("--node-monitor-grace", type=int, default=None, help="seconds (default 40)")
    sp.add_argument("--election-timeout", type=int, default=None, metavar="MS",
                    help="etcd election timeout in milliseconds (default 1000)")
    sp.add_argument("--heartbeat-interval", type=int, default=None, metavar="MS",
                    help="etcd heartbeat interval in milliseconds (default 100)")
    sp.add_argument("--pre-vote", action="store_true", help="etcd raft pre-vote (off by default in etcd 3.4)")
    sp.add_argument("--quota-backend-bytes", type=int, default=None, metavar="BYTES",
                    help="etcd backend quota (default etcd's 2 GiB); e.g. 33554432 for etcd-nospace experiments")
    sp.add_argument("--bin-dir", default=None, help="use kube-* binaries from DIR ($CHAOSLAB_BIN_DIR)")
    sp.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for ready")
    lab_cmd("down", cmd_lab_down, "stop a lab and remove everything it made")
    lab_cmd("status", cmd_lab_status, "processes, leaders, readiness")
    lab_cmd("kubeconfig", cmd_lab_kubeconfig, "print the admin kubeconfig path")
    sp = lab_cmd("logs", cmd_lab_logs, "print a component's log")
    sp.add_argument("component", help="etcd, kube-apiserver, kube-scheduler, kube-controller-manager, "
                    "haproxy, nodes, supervisor")
    sp.add_argument("--host", default=None, help="cp1, cp2 … for per-host components")
    sp.add_argument("-n", "--lines", type=int, default=100)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as exc:
        for problem in exc.problems:
            # One problem a line, never wrapped: people grep these and CI logs keep them whole.
            console.print(f"[red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        return EXIT_INVALID
    except ChaoslabError as exc:
        if args.debug:
            console.print_exception()
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_COULD_NOT_RUN
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 -- a bug of chaoslab's must not read as "SLO violated" (exit 1)
        if args.debug:
            console.print_exception()
        console.print(f"[red]internal error:[/] {escape(type(exc).__name__)}: {escape(str(exc))} (a chaoslab bug: "
                      f"please report it with the output of --debug)", highlight=False, soft_wrap=True)
        return EXIT_COULD_NOT_RUN


if __name__ == "__main__":
    sys.exit(main())
