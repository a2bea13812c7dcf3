"""`chaoslab run`'s CI contract: exit codes 0/1/2/3 and the files it publishes. The run itself is replaced
by canned outcomes; the gate, reports and publishing are real."""

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from fakes import lay_out_run
from measure.synthetic import scheduler_kill
from reports.test_reports import experiment

from chaoslab import cli
from chaoslab.judge.gate import Policy
from chaoslab.ops import session
from chaoslab.ops.session import Outcome

REPO = Path(__file__).resolve().parents[3]


def judged(tmp_path: Path, policy: Policy, takeover: float = 27.0) -> Outcome:
    d = tmp_path / f"run-{takeover:g}"
    d.mkdir()
    tl = scheduler_kill(takeover=takeover)
    a = lay_out_run(d, experiment(), [tl], policy=policy)
    return Outcome(experiment(), d, a.verdict, a.gate, [tl], 1.0, assessment=a)


def fake_run(monkeypatch: pytest.MonkeyPatch, make: Any) -> list[Policy]:
    seen: list[Policy] = []

    def run_file(path: Path, **kw: Any) -> list[Outcome]:
        seen.append(kw["policy"])
        return list(make(kw["policy"]))

    monkeypatch.setattr(session, "run_file", run_file)
    return seen


def test_all_gating_slos_met_exits_0_and_publishes_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = fake_run(monkeypatch, lambda p: [judged(tmp_path, p)])
    out = tmp_path / "ci"
    code = cli.main(["run", "x.yaml", "--no-live", "--fail-on", "recoveryTime", "--warn-margin", "10%",
                     "--junit", str(out / "junit.xml"), "--summary", str(out / "summary.md"),
                     "--metrics-file", str(out / "chaoslab.prom"), "--report-url", "https://ci/{run}/report.html"])
    assert code == cli.EXIT_OK == 0
    assert seen == [Policy(frozenset({"recoveryTime"}), 0.1)]
    root = ET.parse(out / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "0", "0")
    text = (out / "summary.md").read_text()
    assert "[report](https://ci/run-27/report.html)" in text and "exit code 0" in text
    assert "chaoslab_gate_passed{experiment=\"scheduler-leader-kill\"} 1.0" in (out / "chaoslab.prom").read_text()


def test_a_violated_gating_slo_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_run(monkeypatch, lambda p: [judged(tmp_path, p)])
    assert cli.main(["run", "x.yaml", "--no-live", "--summary", str(tmp_path / "s.md")]) == cli.EXIT_SLO_VIOLATED == 1
    assert "exit code 1" in (tmp_path / "s.md").read_text()


def test_an_experiment_not_carried_out_exits_3_even_after_a_failed_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    aborted = Outcome(experiment(), None, error="RunAborted: steady state not met before injection")
    fake_run(monkeypatch, lambda p: [judged(tmp_path, p), aborted])
    code = cli.main(["run", "x.yaml", "--no-live", "--junit", str(tmp_path / "j.xml")])
    assert code == cli.EXIT_COULD_NOT_RUN == 3
    assert "RunAborted: steady state not met" in capsys.readouterr().err
    root = ET.parse(tmp_path / "j.xml").getroot()
    assert (root.get("failures"), root.get("errors")) == ("1", "1")


@pytest.mark.parametrize("argv", [
    ["--fail-on", "lostWrites"],          # not an SLO of that file: the gate could never fail
    ["--fail-on", "recoverytime"],        # not a metric at all
    ["--warn-margin", "150%"],
])
def test_bad_gate_options_exit_2_before_touching_a_cluster(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", str(REPO / "experiments" / "etcd-leader-kill.yaml"), "--no-live", *argv])
    assert code == cli.EXIT_INVALID == 2
    assert "error:" in capsys.readouterr().err


def test_a_publishing_problem_warns_and_keeps_the_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    fake_run(monkeypatch, lambda p: [judged(tmp_path, p, takeover=12.0)])
    code = cli.main(["run", "x.yaml", "--no-live", "--pushgateway", "http://127.0.0.1:9"])
    assert code == 0
    assert "cannot push to the Pushgateway http://127.0.0.1:9" in capsys.readouterr().err


def test_a_bug_exits_3_never_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(path: Path, **kw: Any) -> list[Outcome]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(session, "run_file", broken)
    assert cli.main(["run", "x.yaml", "--no-live"]) == cli.EXIT_COULD_NOT_RUN == 3
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: division by zero" in err and "Traceback" not in err
