"""Every shipped experiment exports to a Chaos Toolkit file that Chaos Toolkit itself accepts: `chaos validate`
(the real CLI, from the venv) on each export (issue 14). The game days' steps are shipped experiments too."""

from __future__ import annotations

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
    """`chaos validate` on each file, all at once (each takes a second or two, mostly start-up)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs = {f: subprocess.Popen([str(CHAOS), "--no-version-check", "--no-log-file", "--settings", str(cwd / "s.yaml"),
                                  "validate", str(f)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
             for f in files}
    return {f: (p.wait(timeout=120), p.stdout.read() if p.stdout else "") for f, p in procs.items()}


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
