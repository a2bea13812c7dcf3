"""The fuzzer's short run in the normal suite: every family of malformed input at least once, a few seconds
in all (`make fuzz` is the long run). A finding is saved under pytest's tmp_path with its input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fuzz.driver import run
from fuzz.mutate import FAMILIES, case, seeds


@pytest.fixture(autouse=True)
def _patient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUZZ_SLOW", os.environ.get("FUZZ_SLOW", "5"))


def test_every_family_of_malformed_input_exits_0_or_2_naming_the_file_without_a_traceback(tmp_path: Path) -> None:
    summary = run(seed=14, count=8 * len(FAMILIES), jobs=1, seconds=5.0, findings_dir=tmp_path,
                  at_least=len(FAMILIES))
    assert summary.cases >= len(FAMILIES), summary.line()
    assert set(summary.families) == set(FAMILIES)
    details = [f"{f['family']} #{f['index']} {f['command']} {f['kind']}: {f['detail'][-600:]}" for f in summary.findings]
    assert not details, "\n\n".join(details)


def test_cases_are_the_same_for_the_same_seed_and_index() -> None:
    assert case(7, 123) == case(7, 123)
    assert [case(7, i).family for i in range(len(FAMILIES))] == list(FAMILIES)


def test_the_seeds_are_every_shipped_file_and_their_chaos_toolkit_exports() -> None:
    paths = {s.path for s in seeds()}
    repo = Path(__file__).resolve().parents[2]
    shipped = {str(p.relative_to(repo)) for top in ("experiments", "probes") for p in (repo / top).rglob("*.yaml")}
    assert shipped <= paths
    assert any(s.kind == "chaostoolkit" for s in seeds()) and any(s.kind == "gameday" for s in seeds())
