"""`chaoslab run` plans each experiment once: `--dry-run` prints that plan, and a real run hands the very
same object to the executor (no second resolution between what was shown and what is done)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import FakeTarget
from rich.console import Console

from chaoslab.ops import session

ROOT = Path(__file__).resolve().parents[3]


class Plan:
    def __init__(self, experiment: Any) -> None:
        self.experiment, self.name, self.refusals = experiment, experiment.name, []

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.name, "id": id(self)}

    def refuse(self) -> None:
        pass


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[Plan]:
    plans: list[Plan] = []

    def make_plan(experiment: Any, target: Any, **kw: Any) -> Plan:
        plans.append(Plan(experiment))
        return plans[-1]

    monkeypatch.setattr(session, "make_plan", make_plan)
    monkeypatch.setattr(session, "resolve_target", lambda *a, **k: FakeTarget())
    return plans


def test_dry_run_prints_the_plan_it_made(made: list[Plan], tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    assert session.run_file(ROOT / "experiments/etcd-leader-kill.yaml", target=None, runs_root=tmp_path, runs=None,
                            live=False, console=console, dry_run=True) == []
    [plan] = made
    assert f"id: {id(plan)}" in console.export_text()


def test_a_real_run_executes_the_plan_it_made(made: list[Plan], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    executed: list[Any] = []
    monkeypatch.setattr(session, "run_plan", lambda plan, target, root, **kw: executed.append(plan) or
                        session.Outcome(plan.experiment))
    session.run_file(ROOT / "experiments/etcd-leader-kill.yaml", target=None, runs_root=tmp_path, runs=None,
                     live=False, console=Console(quiet=True))
    assert len(made) == 1 and executed == made
