"""The game day session with a fake experiment runner: order, skipped dependents, confirmations, the day's
abort conditions, exit codes and notifications (a real local HTTP server, a real command)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from fakes import FakeTarget
from rich.console import Console

from chaoslab.errors import SpecError
from chaoslab.ops import gameday as session
from chaoslab.ops.notify import send
from chaoslab.ops.session import Outcome
from chaoslab.spec.gameday import GameDay, Notification, Step
from chaoslab.spec.model import Experiment, FaultSpec
from chaoslab.spec.window import Window
from chaoslab.timeline import Timeline

NOW = dt.datetime(2026, 5, 19, 11, 0, tzinfo=dt.UTC)


def exp(name: str) -> Experiment:
    return Experiment(name, (FaultSpec("kill-process", {"component": "etcd"}),), 10.0)


def make_day(*steps: Step, **kw: Any) -> GameDay:
    return GameDay("day", tuple(steps), **kw)


def fake_runner(monkeypatch: pytest.MonkeyPatch, results: dict[str, str],
                timelines: dict[str, list[Timeline]] | None = None) -> list[str]:
    """Replace the planner and the experiment runner: `results[name]` is pass, fail or error. Returns the
    names run."""
    ran: list[str] = []

    def run_plan(plan: Any, target: object, runs_root: Path, **kw: Any) -> Outcome:
        experiment = plan.experiment
        ran.append(experiment.name)
        tls = (timelines or {}).get(experiment.name, [])
        if kw.get("abort_check"):
            for tl in tls:
                if reason := kw["abort_check"](tl):
                    return Outcome(experiment, timelines=tls, error=f"RunAborted: {reason}")
        r = results.get(experiment.name, "pass")
        if r == "error":
            return Outcome(experiment, error="TargetError: unreachable")
        return Outcome(experiment, gate=SimpleNamespace(passed=r == "pass"), timelines=tls)  # type: ignore[arg-type]

    monkeypatch.setattr(session, "run_plan", run_plan)
    monkeypatch.setattr(session, "resolve_target", lambda *a, **k: FakeTarget())
    monkeypatch.setattr(session, "make_plan", lambda e, t, **kw: SimpleNamespace(experiment=e, refusals=[]))
    return ran


def go(day: GameDay, tmp_path: Path, *, yes: bool = False, interactive: bool = False,
       answer: bool = True, now: dt.datetime = NOW) -> session.DayOutcome:
    return session.run_game_day(day, target=None, runs_root=tmp_path, now=now, yes=yes, interactive=interactive,
                                ask=lambda q: answer, live=False, console=Console(file=open("/dev/null", "w")),
                                sleep=lambda s: None)


def statuses(outcome: session.DayOutcome) -> dict[str, str]:
    return {s.name: s.status for s in outcome.steps}


def test_a_failed_dependency_skips_its_dependents_and_the_rest_still_runs(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    ran = fake_runner(monkeypatch, {"a": "fail"})
    day = make_day(Step("a", exp("a")), Step("b", exp("b"), after=("a",)), Step("c", exp("c"), after=("b",)),
                   Step("d", exp("d")))
    out = go(day, tmp_path)
    assert ran == ["a", "d"]
    assert statuses(out) == {"a": "failed", "b": "skipped", "c": "skipped", "d": "passed"}
    assert out.steps[1].reason == "skipped: a failed (it must pass first: after)"
    assert out.steps[2].reason == "skipped: b skipped (it must pass first: after)"
    assert out.exit_code == 1
    record = json.loads((out.day_dir / "gameday.json").read_text())
    assert record["schema"] == "chaoslab.io/gameday/v1" and record["exitCode"] == 1
    assert [s["status"] for s in record["steps"]] == ["failed", "skipped", "skipped", "passed"]


def test_an_experiment_that_cannot_run_stops_the_day_with_exit_3(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    ran = fake_runner(monkeypatch, {"a": "error"})
    out = go(make_day(Step("a", exp("a")), Step("b", exp("b"))), tmp_path)
    assert ran == ["a"] and statuses(out) == {"a": "error", "b": "skipped"}
    assert out.steps[1].reason == "not run: the day stopped at a" and out.exit_code == 3


def test_confirm_under_yes_is_recorded_as_auto_confirmed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ran = fake_runner(monkeypatch, {})
    out = go(make_day(Step("a", exp("a"), confirm="Really?")), tmp_path, yes=True)
    assert ran == ["a"] and out.steps[0].confirmation == "auto-confirmed by --yes" and out.exit_code == 0


def test_confirm_without_a_terminal_or_yes_skips_the_step_and_says_why(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    ran = fake_runner(monkeypatch, {})
    out = go(make_day(Step("a", exp("a"), confirm="Really?"), Step("b", exp("b"), after=("a",)),
                      Step("c", exp("c"))), tmp_path)
    assert ran == ["c"]
    assert out.steps[0].reason == "skipped: needs confirmation, but there is no terminal and no --yes ('Really?')"
    assert statuses(out) == {"a": "skipped", "b": "skipped", "c": "passed"}
    assert out.exit_code == 0  # a skipped confirmation is recorded, not a failure


def test_confirm_on_a_terminal_asks_and_a_no_skips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_runner(monkeypatch, {})
    out = go(make_day(Step("a", exp("a"), confirm="Really?")), tmp_path, interactive=True, answer=False)
    assert out.steps[0].status == "skipped" and out.steps[0].confirmation == "declined at the prompt"
    out = go(make_day(Step("a", exp("a"), confirm="Really?")), tmp_path, interactive=True, answer=True)
    assert out.steps[0].status == "passed" and out.steps[0].confirmation == "confirmed at the prompt"


def unavailable(seconds: float) -> Timeline:
    """A run whose load-balanced apiserver was not ready for `seconds`."""
    tl = Timeline(0.0, 0.0, lambda: 0.0)
    tl.sample("apiserver", "lb", t=0.0, ready=False, status=None)
    tl.sample("apiserver", "lb", t=seconds, ready=True, status=200)
    return tl


def test_the_day_abort_condition_adds_up_over_experiments_and_stops_the_day(monkeypatch: pytest.MonkeyPatch,
                                                                            tmp_path: Path) -> None:
    ran = fake_runner(monkeypatch, {}, {"a": [unavailable(70.0)], "b": [unavailable(60.0)]})
    day = make_day(Step("a", exp("a")), Step("b", exp("b")), Step("c", exp("c")),
                   abort={"apiserverUnavailable": 120.0})
    out = go(day, tmp_path)
    assert ran == ["a", "b"]
    assert statuses(out) == {"a": "passed", "b": "error", "c": "skipped"}
    assert "game day abort condition apiserverUnavailable > 120 s over the day (now 130.0 s)" in out.stopped
    assert out.exit_code == 3 and out.totals == {"apiserverUnavailable": 130.0}


def test_the_budget_is_checked_between_experiments_too() -> None:
    budget = session.DayBudget({"apiserverUnavailable": 60.0})
    budget.add([unavailable(50.0)])
    assert budget.reason() is None
    budget.add([unavailable(11.0)])
    assert budget.reason() is not None and "now 61.0 s" in (budget.reason() or "")


def test_outside_the_window_nothing_is_made(tmp_path: Path) -> None:
    day = make_day(Step("a", exp("a")), window=Window(days=("Mon",), where="d.yaml:5 spec.window"))
    with pytest.raises(SpecError, match=r"d.yaml:5 spec.window: outside the game day's window .*Tue is not one of Mon"):
        go(day, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.headers["Content-Type"], body))
        self.send_response(500 if self.path == "/broken" else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_notifications_post_json_and_markdown_run_commands_and_only_warn_on_failure(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    (tmp_path / "gameday.json").write_text('{"name": "day", "exitCode": 1}')
    (tmp_path / "summary.md").write_text("## Game day day: FAIL\n")
    out = tmp_path / "cmd.txt"
    try:
        sent, problems = send([
            Notification(webhook=f"{url}/json"),
            Notification(webhook=f"{url}/md", format="markdown"),
            Notification(webhook=f"{url}/broken", where="d.yaml:9 spec.notify[2]"),
            Notification(webhook="http://127.0.0.1:9/closed", where="d.yaml:10 spec.notify[3]"),
            Notification(command=(sys.executable, "-c", (f"import os,sys; open({str(out)!r}, 'w').write("
                                  "os.environ['CHAOSLAB_GAMEDAY_EXIT'] + ' ' + sys.stdin.read())")), on="failure"),
            Notification(command=("false",), where="d.yaml:12 spec.notify[5]"),
        ], tmp_path, exit_code=1)
    finally:
        server.shutdown()
    assert Hook.received[0] == ("application/json; charset=utf-8", b'{"name": "day", "exitCode": 1}')
    assert Hook.received[1] == ("text/markdown; charset=utf-8", b"## Game day day: FAIL\n")
    assert len(sent) == 3 and out.read_text() == "1 ## Game day day: FAIL\n"
    assert [p.split(":")[0] for p in problems] == ["d.yaml"] * 3
    assert "500" in problems[0] and "exited 1" in problems[2]


def test_failure_only_notifications_stay_quiet_on_success(tmp_path: Path) -> None:
    (tmp_path / "gameday.json").write_text("{}")
    (tmp_path / "summary.md").write_text("ok\n")
    assert send([Notification(command=("false",), on="failure")], tmp_path, exit_code=0) == ([], [])


def test_a_refused_later_step_stops_the_day_before_the_first_step_changes_anything(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ran = fake_runner(monkeypatch, {})
    monkeypatch.setattr(session, "make_plan", lambda e, t, **kw: SimpleNamespace(
        experiment=e, refusals=["kubeconfig context 'prod' is not the lab and is not allowed"] if e.name == "d" else []))
    day = make_day(Step("a", exp("a")), Step("b", exp("b")), Step("c", exp("c")), Step("d", exp("d")))
    with pytest.raises(SpecError) as refused:
        go(day, tmp_path)
    assert ran == []
    assert refused.value.problems == ["step d: kubeconfig context 'prod' is not the lab and is not allowed",
                                      "nothing was changed: no step of the game day ran"]
    assert not any(tmp_path.iterdir())
