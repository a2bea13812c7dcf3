"""Every shipped experiment exports to a Chaos Toolkit file that Chaos Toolkit itself accepts: `chaos validate`
(the real CLI, from the venv) on each export (issue 14). The game days' steps are shipped experiments too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaoslab.cli import main
from chaoslab.spec.chaostoolkit import to_chaostoolkit
from chaoslab.spec.loader import validate_all

REPO = Path(__file__).resolve().parents[3]
CHAOS = Path(sys.executable).with_name("chaos")
EXPERIMENTS = sorted(p for p in (REPO / "experiments").rglob("*.yaml") if "manifests" not in p.parts)


def _chaos_validate(files: list[Path], cwd: Path) -> dict[Path, tuple[int, str]]:
    """`chaos validate` on each file: Chaos Toolkit's CLI in one process (`validate_many.py`: its start-up,
    a second or two, once instead of once a file)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    results = cwd / "results.json"
    subprocess.run([str(CHAOS.with_name("python")), str(Path(__file__).with_name("validate_many.py")), str(results),
                    str(cwd / "s.yaml"), *map(str, files)], cwd=cwd, env=env, check=True, timeout=300)
    return {Path(f): (code, text) for f, (code, text) in json.loads(results.read_text()).items()}


@pytest.mark.skipif(not CHAOS.exists(), reason="the chaos CLI (chaostoolkit) is not installed in this venv")
def test_every_shipped_experiment_exports_to_a_file_chaos_validate_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    experiments, game_days, problems = validate_all(EXPERIMENTS)
    assert not problems
    assert {p for e in experiments if e.source for p in [e.source]} | {d.source for d in game_days} == set(EXPERIMENTS)
    exported = []
    for exp in experiments:
        out = tmp_path / f"{exp.name}.json"
        assert main(["export", "--to", "chaostoolkit", str(exp.source), "-o", str(out)]) == 0, capsys.readouterr()
        exported.append(out)
    for day in game_days:
        assert {Path(os.path.normpath(s.experiment.source)) for s in day.steps if s.experiment.source} <= set(EXPERIMENTS)
    results = _chaos_validate(exported, tmp_path)
    refused = {f.name: text[-800:] for f, (code, text) in results.items() if code != 0}
    assert not refused
    assert all("experiment syntax and semantic look valid" in text for _, text in results.values())


def test_an_experiment_without_a_description_exports_one(tmp_path: Path) -> None:
    source = tmp_path / "x.yaml"
    source.write_text("apiVersion: chaoslab.io/v1alpha1\nkind: Experiment\nmetadata: {name: x}\n"
                      "spec: {faults: [{kind: kill-process, component: etcd}], duration: 20s}\n")
    [exp] = validate_all([source])[0]
    assert to_chaostoolkit(exp)["description"] == ("chaoslab experiment x: kill-process for 20s, judged against "
                                                   "its SLOs.")
