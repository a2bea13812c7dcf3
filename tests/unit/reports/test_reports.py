import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fakes import lay_out_run
from measure.synthetic import build, etcd_steady, inject, scheduler_kill

from chaoslab.errors import SpecError
from chaoslab.execute.rundir import RunDir
from chaoslab.judge.assess import assess
from chaoslab.judge.gate import Policy
from chaoslab.judge.verdict import Verdict
from chaoslab.reports import experiment_from_json, experiment_to_json, rebuild, write_reports
from chaoslab.spec import load
from chaoslab.spec.gameday import load_game_day
from chaoslab.spec.model import Experiment, FaultSpec, SloSpec
from chaoslab.timeline import Timeline

REPO = Path(__file__).resolve().parents[3]
STEADY = ("apiserver-ready", "etcd-quorum", "scheduler-leader", "controller-manager-leader")


def experiment(runs: int = 1) -> Experiment:
    return Experiment(
        name="scheduler-leader-kill", description="Kill the kube-scheduler leader.",
        faults=(FaultSpec("kill-process", {"component": "kube-scheduler", "select": "leader", "signal": "KILL"}),),
        duration=30.0, steady_state=STEADY, runs=runs,
        slos=(SloSpec("recoveryTime", "max", 30.0), SloSpec("schedulerTimeToNewLeader", "max", 10.0),
              SloSpec("schedulerLeaderElections", "max", 1.0), SloSpec("etcdLeaderElections", "max", 0.0),
              SloSpec("recoveryTime", "p95", 20.0)))


def jittery(tl: Timeline, seed: float) -> Timeline:
    """The same run with times that do not round-trip through four decimals, as a real clock gives."""
    out = Timeline(tl.started_wall, 0.0, lambda: 0.0)
    for s in tl.samples:
        out.sample(s.probe, s.subject, t=s.t + seed * 1e-5 + 1.23456789e-7, **s.values)
    for e in tl.events:
        out.event(e.kind, t=e.t + seed * 1e-5 + 1.23456789e-7, **e.detail)
    return out


def run_dir(tmp_path: Path, timelines: list[Timeline], exp: Experiment) -> tuple[Path, Verdict]:
    """Lay out a run directory as the run session does, then write the reports from memory."""
    return tmp_path, lay_out_run(tmp_path, exp, timelines).verdict


def test_write_reports_writes_four_files(tmp_path: Path) -> None:
    d, _ = run_dir(tmp_path, [scheduler_kill()], experiment())
    for name in ("verdict.json", "junit.xml", "report.md", "report.html"):
        assert (d / name).stat().st_size > 200


def test_rebuild_reproduces_every_report_byte_for_byte(tmp_path: Path) -> None:
    timelines = [jittery(scheduler_kill(), 1), jittery(scheduler_kill(takeover=25.0), 2)]
    d, _ = run_dir(tmp_path, timelines, experiment(runs=2))
    before = {n: (d / n).read_bytes() for n in ("verdict.json", "junit.xml", "report.md", "report.html")}
    paths = rebuild(d)
    assert [p.name for p in paths] == list(before)
    for name, data in before.items():
        assert (d / name).read_bytes() == data, name


def test_rebuild_uses_the_recorded_renewal_window(tmp_path: Path) -> None:
    exp = experiment()
    d, _ = run_dir(tmp_path, [scheduler_kill()], exp)
    tl = Timeline.load(d / "runs" / "1" / "timeline.jsonl")
    write_reports(RunDir(d), exp, assess(exp, [tl], 9.0, Policy()), [tl])
    before = (d / "verdict.json").read_bytes()
    rebuild(d)
    assert (d / "verdict.json").read_bytes() == before
    assert json.loads(before)["renewalWindow"] == 9.0


def test_rebuild_of_a_directory_without_a_run_says_so(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a chaoslab run directory"):
        rebuild(tmp_path)
    (tmp_path / "experiment.json").write_text(json.dumps(experiment_to_json(experiment())))
    with pytest.raises(SpecError, match="no saved timelines"):
        rebuild(tmp_path)


def test_verdict_json_is_the_versioned_verdict(tmp_path: Path) -> None:
    d, verdict = run_dir(tmp_path, [scheduler_kill()], experiment())
    data = json.loads((d / "verdict.json").read_text())
    assert data["schema"] == "chaoslab.io/verdict/v1"
    assert Verdict.from_json(data) == verdict


def test_junit_has_one_testcase_per_slo_and_failures_for_violations(tmp_path: Path) -> None:
    d, verdict = run_dir(tmp_path, [scheduler_kill()], experiment())
    root = ET.parse(d / "junit.xml").getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "scheduler-leader-kill"
    cases = suite.findall("testcase")
    assert len(cases) == len(verdict.slos) == 5
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"schedulerTimeToNewLeader max 10 s"}
    failure = failed["schedulerTimeToNewLeader max 10 s"]
    assert failure is not None
    assert failure.get("message") == "schedulerTimeToNewLeader: measured 16.995 s (±0.005), target ≤ max 10 s"
    assert "t=27.00 s" in (failure.text or "")
    assert suite.get("tests") == "5" and suite.get("failures") == "1" and suite.get("errors") == "0"


def test_markdown_has_the_slo_and_phase_tables(tmp_path: Path) -> None:
    d, _ = run_dir(tmp_path, [scheduler_kill()], experiment())
    md = (d / "report.md").read_text()
    assert md.startswith("# scheduler-leader-kill: FAIL")
    assert "| schedulerTimeToNewLeader | max 10 s | 16.995 s (±0.005) | **FAIL** |" in md
    assert "| new leader elected | 10.00 | 27.00 | 17.00 |" in md
    assert "Distribution over runs" not in md


def test_markdown_shows_the_distribution_for_several_runs(tmp_path: Path) -> None:
    d, _ = run_dir(tmp_path, [scheduler_kill(), scheduler_kill(takeover=25.0)], experiment(runs=2))
    md = (d / "report.md").read_text()
    assert "## Distribution over runs" in md
    assert "| recoveryTime | 2 | 15.00 s | 16.00 s |" in md
    assert "at least 59 runs are needed" in md


def test_html_is_self_contained_with_an_svg_chart(tmp_path: Path) -> None:
    d, _ = run_dir(tmp_path, [scheduler_kill()], experiment())
    html = (d / "report.html").read_text()
    assert html.count("<svg") == 1
    for lane in ("etcd cp1: leader named", "kube-scheduler holder", "kube-controller-manager holder",
                 "apiserver (load balancer)", "API write (canary)", "steady state", "recovery phases"):
        assert lane in html
    assert "fault window" in html and "recovered +17.00 s" in html
    for external in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert external not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    ET.fromstring(html[html.index("<svg"):html.index("</svg>") + 6])  # the chart is well-formed XML


def test_html_says_not_recovered(tmp_path: Path) -> None:
    d, _ = run_dir(tmp_path, [scheduler_kill(takeover=None)], experiment())
    assert "not recovered" in (d / "report.html").read_text()


def test_reports_of_a_run_without_injection_still_render(tmp_path: Path) -> None:
    d, verdict = run_dir(tmp_path, [build(etcd_steady(0.0, 5.0, "cp1", 2))], experiment())
    assert not verdict.passed
    assert "not measured" in (d / "report.md").read_text()


def test_experiment_json_round_trips_for_every_shipped_experiment() -> None:
    files = sorted(p for p in (REPO / "experiments").rglob("*.yaml") if "manifests" not in p.parts)
    assert files
    for f in files:
        # A game day's experiments, with its overrides applied, round-trip too.
        found = ([s.experiment for s in load_game_day(f).steps] if "gamedays" in f.parts else load(f))
        for exp in found:
            data = json.loads(json.dumps(experiment_to_json(exp)))
            assert experiment_from_json(data) == exp, f


def test_experiment_json_rejects_other_files() -> None:
    with pytest.raises(ValueError, match="not a chaoslab experiment.json"):
        experiment_from_json({"name": "x"})


def test_inject_helper_is_what_the_runner_writes() -> None:
    # The runner's inject event carries targets as "component@host"; measurements rely on that shape.
    rec = inject(1.0, "kube-scheduler", "cp1")
    assert rec[2]["targets"] == ["kube-scheduler@cp1"]  # type: ignore[index]
