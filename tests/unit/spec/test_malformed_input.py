"""Malformed input never crashes, hangs or blows up the loader (issue 14): one regression test per family the
fuzzer (tests/fuzz/) covers. Each problem is a `SpecError` line with file, line and field; through the CLI
the exit code is 2 and the file is named."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import chaoslab.plan  # noqa: F401  - registers the fault and target checks, as the CLI does
from chaoslab.cli import main
from chaoslab.errors import SpecError
from chaoslab.spec import checks, load, load_text
from chaoslab.spec.gameday import load_game_day, load_game_day_text
from chaoslab.spec.loader import validate_all
from chaoslab.spec.reading import MAX_BYTES, MAX_DEPTH

EXPERIMENT = """\
apiVersion: chaoslab.io/v1alpha1
kind: Experiment
metadata:
  name: kill
spec:
  faults:
    - {kind: kill-process, component: etcd, select: follower, count: 1}
  duration: 30s
  runs: 2
  slo:
    recoveryTime: {max: 30s}
    etcdLeaderElections: {max: 1}
"""


def problems_of(text: str, source: str = "experiments/x.yaml") -> list[str]:
    with pytest.raises(SpecError) as info:
        load_text(text, source)
    return info.value.problems


def one_problem(text: str, source: str = "experiments/x.yaml") -> str:
    [problem] = problems_of(text, source)
    return problem


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# ---- YAML the parser used to let through ----------------------------------------------------------------
def test_a_form_feed_in_a_value_is_a_problem_at_its_line() -> None:
    problem = one_problem(EXPERIMENT.replace("name: kill", "name: ki\fll"))
    assert problem.startswith("experiments/x.yaml:4: invalid YAML: the control character U+000C")


@pytest.mark.parametrize(("value", "says"), [
    ("!!int 5s", "'5s' is not an integer (tagged !!int)"),
    ("!!bool maybe", "'maybe' is not true or false (tagged !!bool)"),
    ("!!timestamp abc", "'abc' is not a valid date or time"),
    ("!!float abc", "'abc' is not a number (tagged !!float)"),
    ("!!python/object:os.system x", "could not determine a constructor"),
])
def test_an_explicit_tag_with_a_bad_value_is_a_problem_at_its_line(value: str, says: str) -> None:
    problem = one_problem(EXPERIMENT.replace("duration: 30s", f"duration: {value}"))
    assert problem.startswith("experiments/x.yaml:8:") and says in problem


def test_an_impossible_date_in_a_game_days_freeze_is_a_problem_at_its_line() -> None:
    day = GAME_DAY.replace("steps:", "window: {freeze: [2026-02-30]}\n  steps:")
    with pytest.raises(SpecError) as info:
        load_game_day_text(day, "day.yaml")
    [problem] = info.value.problems
    assert problem.startswith("day.yaml:6:") and "'2026-02-30' is not a valid date" in problem


# ---- numbers at the edges -------------------------------------------------------------------------------
@pytest.mark.parametrize("digits", ["1" * 5000, "0x" + "f" * 5000, "1" * 40])
def test_an_integer_beyond_any_field_is_a_problem_not_an_overflow(digits: str) -> None:
    problem = one_problem(EXPERIMENT.replace("{max: 1}", f"{{max: {digits}}}"))
    assert problem.startswith("experiments/x.yaml:12")
    assert "too large" in problem and len(problem) < 300


def test_a_long_digit_string_in_a_duration_is_too_long_not_infinite() -> None:
    problem = one_problem(EXPERIMENT.replace("duration: 30s", f"duration: {'9' * 400}s"))
    assert problem.startswith("experiments/x.yaml:8 spec.duration:") and "too long" in problem


def test_a_huge_number_of_seconds_is_too_large() -> None:
    problem = one_problem(EXPERIMENT.replace("{max: 30s}", "{max: 1.0e+300}"))
    assert "experiments/x.yaml:11 spec.slo.recoveryTime.max" in problem


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1.0e+999"])
def test_nan_and_infinity_are_not_numbers_any_field_takes(value: str) -> None:
    problem = one_problem(EXPERIMENT.replace("{max: 30s}", f"{{max: {value}}}"))
    assert problem.startswith("experiments/x.yaml:11:") and "not a finite number" in problem


@pytest.mark.parametrize(("field", "value"), [("runs: 2", "runs: 2.0"), ("count: 1", "count: 1.5"),
                                              ("{max: 1}", "{max: 1.0}")])
def test_a_float_where_a_whole_number_is_expected_is_a_problem(field: str, value: str) -> None:
    problem = one_problem(EXPERIMENT.replace(field, value))
    assert "with a decimal point" in problem or "is not of type" in problem or "expected" in problem


# ---- nesting and aliases --------------------------------------------------------------------------------
@pytest.mark.parametrize("nesting", ["[" * 5000 + "]" * 5000, "{a: " * 5000 + "1" + "}" * 5000, "[" * 5000])
def test_deep_flow_nesting_is_refused_at_the_limit_quickly(nesting: str) -> None:
    started = time.monotonic()
    problem = one_problem(EXPERIMENT.replace("duration: 30s", f"duration: {nesting}"))
    assert time.monotonic() - started < 1.0  # the scanner's look-ahead over the line was quadratic in depth
    assert problem.startswith("experiments/x.yaml:8:") and f"nested more than {MAX_DEPTH} levels" in problem


def test_deep_block_nesting_is_refused_at_the_limit() -> None:
    block = "".join("  " * i + "a:\n" for i in range(1, 200))
    problem = one_problem(EXPERIMENT + "  bogus:\n" + block)
    assert f"nested more than {MAX_DEPTH} levels" in problem


def test_a_billion_laughs_is_refused_at_once() -> None:
    levels = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    started = time.monotonic()
    problem = one_problem(EXPERIMENT + "  bomb: {" + ", ".join(levels) + "}\n")
    assert time.monotonic() - started < 1.0
    assert "expands to more than" in problem and problem.startswith("experiments/x.yaml:13:")


def test_an_alias_inside_the_node_it_names_is_a_loop() -> None:
    problem = one_problem(EXPERIMENT.replace("duration: 30s", "duration: &a [*a]"))
    assert "the alias *a is inside the node &a it names (a loop)" in problem


def test_a_merge_key_with_an_alias_still_loads() -> None:
    text = EXPERIMENT.replace("  faults:\n", "  faults:\n    - &k {kind: kill-process, component: etcd}\n"
                              "    - {<<: *k, select: random}\n")
    assert len(load_text(text)[0].faults) == 3


# ---- rich markup and long values in terminal output -------------------------------------------------------
def test_markup_in_a_value_is_printed_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(EXPERIMENT.replace("component: etcd", "component: '[/]'"))
    code, out = cli(["validate", str(path)], capsys)
    assert code == 2 and "spec.faults[0].component: '[/]' is not one of" in out


def test_markup_in_a_file_name_is_printed_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "[draft].yaml", tmp_path / "[bold]x[red].yaml"
    good.write_text(EXPERIMENT)
    bad.write_text(EXPERIMENT.replace("30s", "soon"))
    code, out = cli(["validate", str(tmp_path)], capsys)
    assert code == 2 and f"{good}: kill" in out and f"{bad}:8 spec.duration" in out


def test_a_40_kb_name_is_refused_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(EXPERIMENT.replace("name: kill", "name: " + "a" * 40_000))
    started = time.monotonic()
    code, out = cli(["validate", str(path)], capsys)
    assert time.monotonic() - started < 2.0
    assert code == 2 and "is 40000 characters long; at most 200" in out


# ---- fields that were checked only in code ----------------------------------------------------------------
SSH = EXPERIMENT.replace("spec:\n", """spec:
  target:
    kind: ssh
    kubeconfig: ~/.kube/prod.conf
    hosts:
      - {name: cp1, address: 10.0.0.11}
      - {name: cp2, address: 10.0.0.12}
""", 1)


@pytest.mark.parametrize(("change", "place", "says"), [
    (("kind: ssh", "kind: ssh\n    components: etcd"), "spec.target.components", "'etcd' is a string"),
    (("{name: cp1, address: 10.0.0.11}", "{name: cp1, address: 10.0.0.11, 1: 2}"), "spec.target.hosts[0][1]",
     "unknown field"),
    (("{name: cp2, address: 10.0.0.12}", "{name: cp2, address: 10.0.0.12, port: 70000}"),
     "spec.target.hosts[1].port", "too large"),
    (("{name: cp2, address: 10.0.0.12}", "{name: cp2, address: 10.0.0.12, port: '22'}"),
     "spec.target.hosts[1].port", "is a string"),
    (("{name: cp2, address: 10.0.0.12}", "{name: cp2, address: '::1'}"), "spec.target.hosts[1].address",
     "not an IPv4 address"),
    (("kind: ssh", "kind: ssh\n    connectTimeout: .nan"), "", "not a finite number"),
    (("kind: ssh", "kind: ssh\n    apiservers: {cp1: 'https://[::1'}"), "spec.target", "Invalid IPv6 URL"),
])
def test_an_ssh_target_is_checked_field_by_field(change: tuple[str, str], place: str, says: str) -> None:
    problems = problems_of(SSH.replace(*change))
    assert any(place in p and says in p for p in problems), problems


CTK = """\
{"title": "kill", "description": "d", "method": [
  {"type": "action", "name": "kill", "pauses": {"after": 10},
   "provider": {"type": "python", "module": "chaoslab.chaostoolkit.actions", "func": "kill_process",
                "arguments": {"component": "etcd", "select": "leader"}}}]}
"""


@pytest.mark.parametrize(("change", "place"), [
    (('"method": [', '"method": 5, "x": ['), "method"),
    (('"title": "kill"', '"title": "kill", "configuration": [1]'), "configuration"),
    (('"pauses": {"after": 10}', '"pauses": 5'), "method[0].pauses"),
    (('"func": "kill_process"', '"func": 5'), "method[0].provider.func"),
    (('"arguments": {', '"arguments": [1], "x": {'), "method[0].provider.arguments"),
])
def test_a_chaos_toolkit_file_of_the_wrong_shape_is_a_problem_at_its_field(change: tuple[str, str], place: str,
                                                                           tmp_path: Path) -> None:
    path = tmp_path / "ctk.json"
    path.write_text(CTK.replace(*change))
    _, _, problems = validate_all([path])
    assert problems and all(p.startswith(f"{path}:") for p in problems)
    assert any(f" {place}:" in p for p in problems), problems


def test_a_self_referencing_chaos_toolkit_configuration_is_a_loop(tmp_path: Path) -> None:
    path = tmp_path / "ctk.yaml"
    path.write_text("title: kill\nconfiguration: &c {a: *c}\nmethod: []\n")
    _, _, [problem] = validate_all([path])
    assert problem.startswith(f"{path}:2:") and "(a loop)" in problem


GAME_DAY = """\
apiVersion: chaoslab.io/v1alpha1
kind: GameDay
metadata: {name: day}
spec:
  notify: [{command: [logger]}]
  steps:
    - experiment: {apiVersion: chaoslab.io/v1alpha1, kind: Experiment, metadata: {name: x},
                   spec: {faults: [{kind: kill-process, component: etcd}], duration: 1}}
"""


@pytest.mark.parametrize(("change", "says"), [
    (("steps:", "window: {timeZone: Europe}\n  steps:"), "day.yaml:6 spec.window.timeZone: 'Europe' is not a time zone"),
    (("[logger]", "\"mail -s 'unclosed\""), "day.yaml:5 spec.notify[0].command: \"mail -s 'unclosed\" cannot be split"),
    (("- experiment:", "- {file: \"a\\0b.yaml\"}\n    - experiment:"), "not a file name"),
    (("steps:", "pause: 1.0e+400\n  steps:"), "day.yaml:6:10: invalid YAML: '1.0e+400' is not a finite number"),
    (("steps:", "repeat: 2.0\n  steps:"), "day.yaml:6 spec.repeat: 2.0 is a number with a decimal point"),
])
def test_a_game_day_field_that_used_to_crash_is_a_problem(change: tuple[str, str], says: str) -> None:
    with pytest.raises(SpecError) as info:
        load_game_day_text(GAME_DAY.replace(*change), "day.yaml")
    assert any(says in p for p in info.value.problems), info.value.problems


# ---- special files -----------------------------------------------------------------------------------------
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load(fifo)
    assert time.monotonic() - started < 1.0
    assert info.value.problems == [f"{fifo}: a FIFO (named pipe), not a regular file; give an experiment file (*.yaml)"]


def test_a_fifo_inside_a_directory_is_named_not_skipped_nor_waited_for(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text(EXPERIMENT)
    experiments, _, problems = validate_all([tmp_path])
    assert [e.name for e in experiments] == ["kill"]
    assert problems == [(f"{tmp_path / 'a.yaml'}: a FIFO (named pipe), not a regular file; give an experiment "
                         "file (*.yaml)")]


def test_dev_zero_is_refused_before_anything_is_read() -> None:
    with pytest.raises(SpecError) as info:
        load(Path("/dev/zero"))
    assert info.value.problems == ["/dev/zero: a character device, not a regular file; give an experiment file (*.yaml)"]


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(SpecError) as info:
        load(path)
    assert info.value.problems == [f"{path}: {MAX_BYTES + 1} bytes; a chaoslab file is at most {MAX_BYTES} bytes"]


def test_a_300_character_file_name_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ("x" * 300 + ".yaml")
    code, out = cli(["validate", str(path)], capsys)
    assert code == 2 and "File name too long" in out
    code, out = cli(["export", "--to", "chaostoolkit", str(path)], capsys)
    assert code == 2 and "File name too long" in out


def test_a_symlink_loop_and_a_directory_named_like_a_file_are_problems(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(SpecError, match="Too many levels of symbolic links"):
        load(loop)
    with pytest.raises(SpecError, match="a directory, not a regular file"):
        load(tmp_path / "dir.yaml")


def test_a_game_day_step_naming_a_fifo_or_dev_zero_is_a_problem(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    day = tmp_path / "day.yaml"
    day.write_text(GAME_DAY.replace("- experiment:", "- {file: fifo.yaml}\n    - {file: /dev/zero}\n    - experiment:"))
    with pytest.raises(SpecError) as info:
        load_game_day(day)
    assert any("fifo.yaml: a FIFO" in p for p in info.value.problems)
    assert any("/dev/zero: a character device" in p for p in info.value.problems)


# ---- fault parameter checks --------------------------------------------------------------------------------
def test_a_fault_check_that_raises_is_a_problem_at_the_fault_collected_with_the_rest() -> None:
    text = EXPERIMENT.replace("{kind: kill-process, component: etcd, select: follower, count: 1}",
                              "{kind: network-degrade, delay: 0s}").replace("runs: 2", "runs: 2\n  probes: [nope]")
    problems = problems_of(text)
    assert any(p.startswith("experiments/x.yaml:7 spec.faults[0]: network-degrade: set loss, delay or both")
               for p in problems), problems
    assert any(p.startswith("experiments/x.yaml:10 spec.probes[0]: 'nope' is neither") for p in problems), problems


def test_a_plugin_check_that_raises_an_error_of_its_own_is_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(kind: str, params: object) -> list[tuple[str, str]]:
        raise TypeError("unexpected keyword argument 'x'")

    monkeypatch.setattr(checks, "_fault_checks", [broken])
    [problem] = problems_of(EXPERIMENT)
    assert problem == ("experiments/x.yaml:7 spec.faults[0]: kill-process: the parameters are refused: unexpected "
                       "keyword argument 'x'")


# ---- the CLI's contract --------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["validate"], ["export", "--to", "chaostoolkit"], ["gameday", "run"]])
def test_malformed_input_exits_2_naming_the_file(command: list[str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(EXPERIMENT.replace("duration: 30s", "duration: !!int 5s"))
    code, out = cli([*command, str(path)], capsys)
    assert code == 2 and f"{path}:8:" in out and "Traceback" not in out
