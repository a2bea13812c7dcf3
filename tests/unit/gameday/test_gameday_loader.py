from pathlib import Path

import pytest

from chaoslab.errors import SpecError
from chaoslab.spec import load
from chaoslab.spec.gameday import load_game_day, load_game_day_text
from chaoslab.spec.loader import validate_all

REPO = Path(__file__).resolve().parents[3]
HEAD = "apiVersion: chaoslab.io/v1alpha1\nkind: GameDay\nmetadata: {name: day}\nspec:\n"
INLINE = """      experiment:
        apiVersion: chaoslab.io/v1alpha1
        kind: Experiment
        metadata: {name: %s}
        spec:
          faults: [{kind: kill-process, component: etcd}]
          duration: 30s
"""


def day(steps: str, extra: str = "") -> str:
    return HEAD + extra + "  steps:\n" + steps


def inline(name: str, more: str = "") -> str:
    return f"    - name: {name}\n{more}" + INLINE % name


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_game_day_text(text, "d.yaml")
    return exc.value.problems


def test_steps_run_in_file_order_except_after_their_dependencies() -> None:
    text = day(inline("c", "      after: [a, b]\n") + inline("a") + inline("b", "      after: [a]\n"))
    loaded = load_game_day_text(text, "d.yaml")
    assert [s.name for s in loaded.steps] == ["a", "b", "c"]
    assert loaded.steps[2].after == ("a", "b")


def test_a_dependency_circle_and_an_unknown_name_are_problems_at_their_lines() -> None:
    text = day(inline("a", "      after: [b]\n") + inline("b", "      after: [a, nope]\n"))
    found = problems(text)
    assert any(p.startswith("d.yaml:") and "spec.steps[1].after[1]: 'nope' is not a step" in p for p in found)
    assert any("wait for each other in a circle: a after b, b after a" in p for p in found)


def test_day_overrides_repeat_and_target_apply_to_every_experiment_and_a_step_wins() -> None:
    text = day(inline("a") + inline("b", "      runs: 5\n      overrides: {duration: 3s}\n"),
               "  target: {kind: lab, name: gd}\n  repeat: 2\n  overrides: {duration: 10s, settle: 2s}\n")
    a, b = load_game_day_text(text, "d.yaml").steps
    assert (a.experiment.duration, a.experiment.settle, a.experiment.runs) == (10.0, 2.0, 2)
    assert (b.experiment.duration, b.experiment.runs) == (3.0, 5)
    assert a.experiment.target is not None and a.experiment.target.params == {"name": "gd"}


def test_an_inline_experiment_problem_names_its_place_in_the_game_day() -> None:
    text = day(inline("a").replace("duration: 30s", "duration: soon"))
    [p] = problems(text)
    assert p.startswith("d.yaml:13 spec.steps[0].experiment.spec.duration:"), p


def test_a_step_needs_exactly_one_of_file_or_experiment() -> None:
    [p] = problems(day("    - name: a\n"))
    assert "spec.steps[0]: give exactly one of `file`" in p


def test_schema_problems_keep_file_line_and_field() -> None:
    found = problems(day(inline("a"), "  window: {days: [Tues], hours: '10-16'}\n"))
    assert any(p.startswith("d.yaml:5 spec.window.days[0]: 'Tues' is not one of Mon") for p in found), found
    assert any(p.startswith("d.yaml:5 spec.window.hours:") for p in found), found


def test_an_unknown_time_zone_is_a_problem() -> None:
    found = problems(day(inline("a"), "  window: {timeZone: Mars/Olympus}\n"))
    assert any("'Mars/Olympus' is not a time zone" in p for p in found)


def test_files_are_relative_to_the_game_day_and_must_hold_one_experiment(tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text((REPO / "experiments" / "etcd-leader-kill.yaml").read_text() + "---\n"
                                       + (REPO / "experiments" / "apiserver-kill.yaml").read_text())
    (tmp_path / "d.yaml").write_text(day("    - file: two.yaml\n"))
    with pytest.raises(SpecError, match="holds 2 experiments; a step runs one"):
        load_game_day(tmp_path / "d.yaml")


def test_the_weekly_game_day_loads_and_validate_accepts_it() -> None:
    path = REPO / "experiments" / "gamedays" / "weekly-control-plane.yaml"
    loaded = load_game_day(path)
    assert loaded.steps[-1].confirm and loaded.abort == {"apiserverUnavailable": 120.0}
    assert all(s.experiment.duration == 10.0 for s in loaded.steps)
    _, days, found = validate_all([path])
    assert found == [] and [d.name for d in days] == ["weekly-control-plane"]


def test_chaoslab_run_refuses_a_game_day_file_with_the_command_to_use() -> None:
    with pytest.raises(SpecError, match="chaoslab gameday run FILE"):
        load(REPO / "experiments" / "gamedays" / "weekly-control-plane.yaml")
