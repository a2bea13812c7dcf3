"""The gate in the reports, the combined JUnit file and the pull-request summary."""

import xml.etree.ElementTree as ET
from pathlib import Path

from measure.synthetic import scheduler_kill

from chaoslab.execute.rundir import RunDir
from chaoslab.judge.gate import Policy, evaluate
from chaoslab.reports import junit, rebuild, summary
from reports.test_reports import experiment, run_dir

GATED = Policy(fail_on=frozenset({"recoveryTime"}), warn_margin=0.2)


def test_reports_follow_the_saved_gate_and_rebuild_keeps_it(tmp_path: Path) -> None:
    RunDir(tmp_path).write_policy(GATED)
    d, verdict = run_dir(tmp_path, [scheduler_kill(takeover=22.0)], experiment())
    assert not verdict.passed  # schedulerTimeToNewLeader 12 s > 10 s, but it does not gate
    md = (d / "report.md").read_text()
    assert md.startswith("# scheduler-leader-kill: PASS (1 SLO violated, not gating, 1 warning)")
    assert "| schedulerTimeToNewLeader | max 10 s | 11.995 s (±0.005) | FAIL, not gating |" in md
    assert "| schedulerLeaderElections | max 1 | 1 | pass, ⚠ warning: within 20% of its limit (1 of max 1) |" in md
    assert "Gate: `--fail-on recoveryTime --warn-margin 20%`." in md
    html = (d / "report.html").read_text()
    assert '<td class="warn"><span>FAIL, not gating</span></td>' in html
    assert "PASS (1 SLO violated, not gating, 1 warning)" in html
    suite = ET.parse(d / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    skipped = cases["schedulerTimeToNewLeader max 10 s"].find("skipped")
    assert skipped is not None and "not gating" in (skipped.get("message") or "")
    assert "WARNING: schedulerLeaderElections within 20%" in (cases["schedulerLeaderElections max 1"].findtext("system-out") or "")
    before = {n: (d / n).read_bytes() for n in ("junit.xml", "report.md", "report.html")}
    rebuild(d)
    assert {n: (d / n).read_bytes() for n in before} == before


def test_reports_without_a_gate_file_are_as_before(tmp_path: Path) -> None:
    d, _ = run_dir(tmp_path, [scheduler_kill()], experiment())
    md = (d / "report.md").read_text()
    assert md.startswith("# scheduler-leader-kill: FAIL\n") and "Gate:" not in md


def test_merge_combines_suites_and_adds_an_error_case_for_a_run_not_carried_out(tmp_path: Path) -> None:
    d, _ = run_dir(tmp_path, [scheduler_kill()], experiment())
    doc = (d / "junit.xml").read_text()
    merged = ET.fromstring(junit.merge([doc, doc], [("etcd-leader-kill", "RunAborted: steady state not met")]))
    suites = merged.findall("testsuite")
    assert [s.get("name") for s in suites] == ["scheduler-leader-kill"] * 2 + ["etcd-leader-kill"]
    assert (merged.get("tests"), merged.get("failures"), merged.get("errors")) == ("11", "2", "1")
    error = suites[2].find("testcase/error")
    assert error is not None and error.get("message") == "RunAborted: steady state not met"


def test_summary_has_the_verdict_table_key_numbers_and_the_report_link(tmp_path: Path) -> None:
    RunDir(tmp_path).write_policy(GATED)
    _d, verdict = run_dir(tmp_path, [scheduler_kill(takeover=22.0)], experiment())
    gate = evaluate(verdict, GATED)
    text = summary.render([summary.Entry("scheduler-leader-kill", verdict, gate, "https://ci.example/r/1.html"),
                           summary.Entry("etcd-leader-kill", None, None, "", "TargetError: lab 'x' is not running")],
                          3)
    assert text.startswith("<!-- chaoslab-summary -->\n## chaoslab: ⛔ NOT RUN — 2 experiments, 2 warnings\n")
    assert ("| scheduler-leader-kill | ✅ PASS (1 SLO violated, not gating, 1 warning) | 4/5 | "
            "[report](https://ci.example/r/1.html) |") in text
    assert "| etcd-leader-kill | ⛔ not carried out | – | – |" in text
    assert "Key numbers: recoveryTime 12.00 s · etcdLeaderElections 0 · schedulerTimeToNewLeader 12.00 s" in text
    assert "- ⚠️ schedulerTimeToNewLeader violated but not gating" in text
    assert "The experiment could not be carried out: TargetError: lab 'x' is not running" in text
    assert "gate `--fail-on recoveryTime --warn-margin 20%` · exit code 3" in text


def test_summary_of_a_failed_gate_lists_the_failure_with_its_evidence(tmp_path: Path) -> None:
    _d, verdict = run_dir(tmp_path, [scheduler_kill()], experiment())
    text = summary.render([summary.Entry(verdict.experiment, verdict, evaluate(verdict, Policy()), "runs/x/report.html")], 1)
    assert "## chaoslab: ❌ FAIL — 1 experiment" in text
    assert "- ❌ schedulerTimeToNewLeader: measured 16.995 s (±0.005), target ≤ max 10 s — " in text
