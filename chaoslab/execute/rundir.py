"""The run directory: the one type that knows its file names and reads and writes them, typed. The executor
writes what happened (experiment, target, plan, pending undo, timelines); the reports write what was
judged (verdict, JUnit, Markdown, HTML); `chaoslab report`, `recover` and `history` read them back.

    runs/<UTC time>-<experiment>/
      experiment.json     the loaded experiment        target.json   how to reach the target again
      experiment.yaml     the file as written          gate.json     the gate policy of the run
      plan.json           the plan, and each run's faults as bound at injection
      undo.json           pending undo (only while a fault may be in place)
      runs/<n>/timeline.jsonl                          verdict.json junit.xml report.md report.html

A Chaos Toolkit action keeps its pending undo in a directory of the same kind (`chaostoolkit-KEY/`: only
`target.json` and `undo.json`).

    >>> rd = RunDir.create(Path("runs"), "etcd-leader-kill")                       # doctest: +SKIP
    >>> rd.write_pending([injection]); rd.pending()                                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.judge.gate import Policy
from chaoslab.judge.verdict import Verdict
from chaoslab.spec.model import Experiment
from chaoslab.spec.serialize import experiment_from_json, experiment_to_json
from chaoslab.timeline import Timeline

EXPERIMENT, SOURCE, TARGET, PLAN, UNDO, GATE = ("experiment.json", "experiment.yaml", "target.json", "plan.json",
                                                "undo.json", "gate.json")
VERDICT, JUNIT, MARKDOWN, HTML = "verdict.json", "junit.xml", "report.md", "report.html"
REPORTS = (VERDICT, JUNIT, MARKDOWN, HTML)


def write_json(path: Path, data: Any, *, indent: int = 1, sort_keys: bool = True) -> Path:
    """Write JSON atomically (a reader never sees half a file, a crash never leaves one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def new_dir(root: Path, name: str) -> Path:
    """`root/<UTC time>-<name>`, made now; `-2`, `-3`… when that second already has one."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path, n = root / f"{stamp}-{name}", 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{name}-{n}"
    path.mkdir(parents=True)
    return path


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, root: Path, name: str) -> RunDir:
        return cls(new_dir(root, name))

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    # ---- what was run -------------------------------------------------------------------------------
    def write_experiment(self, experiment: Experiment) -> None:
        write_json(self.path / EXPERIMENT, experiment_to_json(experiment), sort_keys=False)
        if experiment.source and experiment.source.is_file():
            shutil.copy(experiment.source, self.path / SOURCE)

    def experiment(self) -> Experiment:
        try:
            return experiment_from_json(json.loads((self.path / EXPERIMENT).read_text()))
        except FileNotFoundError:
            raise SpecError([(f"{self.path}: not a chaoslab run directory (no {EXPERIMENT}); pass the directory "
                             f"`chaoslab run` printed, e.g. runs/<time>-<experiment>")]) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise SpecError([f"{self.path / EXPERIMENT}: cannot be read ({exc})"]) from exc

    def write_target(self, description: Mapping[str, object]) -> None:
        write_json(self.path / TARGET, dict(description), sort_keys=False)

    def target(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / TARGET).read_text())
        return data

    def write_plan(self, plan: Mapping[str, Any]) -> None:
        write_json(self.path / PLAN, dict(plan))

    def write_policy(self, policy: Policy) -> None:
        write_json(self.path / GATE, policy.to_json())

    def policy(self) -> Policy:
        """The policy the run was gated with; the default (every SLO gates) for runs without one."""
        try:
            return Policy.from_json(json.loads((self.path / GATE).read_text()))
        except FileNotFoundError:
            return Policy()
        except (ValueError, TypeError) as exc:
            raise SpecError([f"{self.path / GATE}: cannot be read ({exc})"]) from exc

    # ---- undo ---------------------------------------------------------------------------------------
    def write_pending(self, injections: Sequence[Mapping[str, Any]]) -> None:
        """The undo of every injection that may be in place, after the standing undo (`write_standing`),
        which stays; nothing at all: the file goes."""
        self._write_undo([e for e in self.pending() if e.get("standing")], injections)

    def write_standing(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """The undo of what stands across the runs of an execution (the objects of `spec.workload`), kept
        first in the same file, so `chaoslab recover` replays it with the faults'."""
        self._write_undo([{**e, "standing": True} for e in entries],
                         [e for e in self.pending() if not e.get("standing")])

    def clear_pending(self) -> None:
        """Everything was undone (`chaoslab recover`)."""
        (self.path / UNDO).unlink(missing_ok=True)

    def _write_undo(self, standing: Sequence[Mapping[str, Any]], injections: Sequence[Mapping[str, Any]]) -> None:
        if entries := [*map(dict, standing), *map(dict, injections)]:
            write_json(self.path / UNDO, entries)
        else:
            (self.path / UNDO).unlink(missing_ok=True)

    def pending(self) -> list[dict[str, Any]]:
        try:
            data: list[dict[str, Any]] = json.loads((self.path / UNDO).read_text())
        except FileNotFoundError:
            return []
        return data

    @property
    def has_pending(self) -> bool:
        return (self.path / UNDO).exists()

    # ---- timelines ----------------------------------------------------------------------------------
    def timeline_path(self, run: int | str) -> Path:
        return self.path / "runs" / str(run) / "timeline.jsonl"

    def save_timeline(self, run: int, timeline: Timeline) -> Path:
        path = self.timeline_path(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        timeline.save(path)
        return path

    def timeline_files(self) -> list[Path]:
        """Saved timelines in run order (1, 2, … 10, then any other names)."""
        return sorted((self.path / "runs").glob("*/timeline.jsonl"),
                      key=lambda p: (not p.parent.name.isdigit(),
                                     int(p.parent.name) if p.parent.name.isdigit() else 0, p.parent.name))

    def timelines(self, *, skip_unreadable: bool = False) -> list[Timeline]:
        out = []
        for f in self.timeline_files():
            try:
                out.append(Timeline.load(f))
            except (ValueError, KeyError, OSError) as exc:
                if not skip_unreadable:
                    raise SpecError([f"{self.path}: a timeline cannot be read ({exc})"]) from exc
        return out

    # ---- reports ------------------------------------------------------------------------------------
    def write_reports(self, texts: Mapping[str, str]) -> list[Path]:
        """Write the rendered reports (file name → text; names from REPORTS)."""
        unknown = set(texts) - set(REPORTS)
        if unknown:
            raise ValueError(f"not a report of a run directory: {', '.join(sorted(unknown))}")
        return [write_text(self.path / name, texts[name]) for name in REPORTS if name in texts]

    def verdict(self) -> Verdict | None:
        """The verdict the reports were written from; None when there is none (yet)."""
        try:
            return Verdict.from_json(json.loads((self.path / VERDICT).read_text()))
        except FileNotFoundError:
            return None

    def read_report(self, name: str) -> str | None:
        try:
            return (self.path / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None


def pending_runs(root: Path) -> Iterable[RunDir]:
    """Every run directory under `root` that has a pending undo."""
    return [RunDir(p.parent) for p in sorted(root.glob(f"*/{UNDO}"))]
