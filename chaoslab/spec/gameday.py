"""Game days as written (YAML, `chaoslab.io/v1alpha1 GameDay`) → the frozen `GameDay`: its steps in run
order, each with its experiment loaded (from a file relative to the game day file, or written inline) and
the day's overrides applied. Pure: reads files, touches no cluster. Called by `chaoslab gameday run` and
`chaoslab validate`; problems carry file, line and field path like every spec problem.

    >>> day = load_game_day(Path("experiments/gamedays/weekly-control-plane.yaml"))      # doctest: +SKIP
    >>> [s.name for s in day.steps]                                                      # doctest: +SKIP
    ['etcd-leader-kill', 'etcd-leader-isolation', 'scheduler-leader-kill', ...]
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chaoslab.errors import SpecError
from chaoslab.spec import loader
from chaoslab.spec.loader import Document, FieldPath, check, parse
from chaoslab.spec.model import Experiment, TargetSpec
from chaoslab.spec.window import DAYS, Window, parse_freeze, parse_hours


@dataclass(frozen=True)
class Notification:
    """Who or what hears the result: a webhook (HTTP POST) or a command (argv, summary on stdin)."""

    webhook: str | None = None
    command: tuple[str, ...] | None = None
    format: Literal["json", "markdown"] = "json"
    """The webhook's body: gameday.json, or summary.md as text/markdown."""
    on: Literal["always", "failure"] = "always"
    where: str = ""


@dataclass(frozen=True)
class Step:
    name: str
    experiment: Experiment
    """Loaded, with the day's and the step's overrides, runs and target applied."""
    after: tuple[str, ...] = ()
    pause: float = 0.0
    """Seconds to wait before this step (not before the first step that runs)."""
    confirm: str = ""
    """A question for a person before the step; "" for none."""
    where: str = ""


@dataclass(frozen=True)
class GameDay:
    name: str
    steps: tuple[Step, ...]
    """In run order: file order, except that a step comes after every step it names in `after`."""
    description: str = ""
    target: TargetSpec | None = None
    window: Window | None = None
    abort: Mapping[str, float] = field(default_factory=dict)
    """metric → limit over the whole day (seconds; apiserverUnavailable, apiWriteUnavailable)."""
    notify: tuple[Notification, ...] = ()
    source: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def _plain_dates(data: Any) -> None:
    """YAML reads an unquoted `2026-12-24` as a date: freeze dates are kept as the text the schema checks."""
    window = data.get("spec", {}).get("window") if isinstance(data, dict) and isinstance(data.get("spec"), dict) \
        else None
    if isinstance(window, dict) and isinstance(window.get("freeze"), list):
        window["freeze"] = [v.isoformat() if isinstance(v, dt.date) else v for v in window["freeze"]]
    # YAML 1.1 reads the key `on:` as true: `{command: [...], on: failure}` means the field `on`.
    notify = data["spec"].get("notify") if isinstance(data, dict) and isinstance(data.get("spec"), dict) else None
    for n in notify if isinstance(notify, list) else []:
        if isinstance(n, dict) and True in n and "on" not in n:
            n["on"] = n.pop(True)


def _window(doc: Document, problems: list[str]) -> Window | None:
    spec = doc.data["spec"]
    if "window" not in spec:
        return None
    w = spec["window"]
    kw: dict[str, Any] = {"where": doc.at(("spec", "window"))}
    if "days" in w:
        kw["days"] = tuple(d for d in DAYS if d in w["days"])
    if "hours" in w:
        try:
            kw["start"], kw["end"] = parse_hours(w["hours"])
        except ValueError as exc:
            problems.append(doc.problem(("spec", "window", "hours"), str(exc)))
    if "timeZone" in w:
        try:
            ZoneInfo(w["timeZone"])
            kw["time_zone"] = w["timeZone"]
        except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):  # OSError: a directory (`Europe`)
            problems.append(doc.problem(("spec", "window", "timeZone"), (
                f"{w['timeZone']!r} is not a time zone this machine knows (IANA names like Europe/Berlin, "
                "UTC; Debian: apt-get install tzdata)")))
    freeze = []
    for i, text in enumerate(w.get("freeze", [])):
        try:
            freeze.append(parse_freeze(text))
        except ValueError as exc:
            problems.append(doc.problem(("spec", "window", "freeze", i), str(exc)))
    kw["freeze"] = tuple(freeze)
    return Window(**kw)


def _overrides(doc: Document, path: FieldPath, values: Mapping[str, Any], problems: list[str]) -> dict[str, float]:
    names = {"duration": "duration", "settle": "settle", "recoveryTimeout": "recovery_timeout"}
    out = {}
    for k, v in values.items():
        if (seconds := _seconds(doc, path + (k,), v, problems)) is not None:
            out[names[k]] = seconds
    return out


def _seconds(doc: Document, path: FieldPath, value: Any, problems: list[str]) -> float | None:
    """Seconds of a duration the schema let through, or None and a problem (too long for one)."""
    try:
        return loader._seconds(doc, path, value)
    except ValueError as exc:
        problems.append(str(exc))
        return None


def _step_experiment(doc: Document, i: int, step: Mapping[str, Any], base: Path,
                     problems: list[str]) -> Experiment | None:
    path: FieldPath = ("spec", "steps", i)
    if ("file" in step) == ("experiment" in step):
        problems.append(doc.problem(path, "give exactly one of `file` (an experiment file, relative to the game "
                                          "day file) or `experiment` (an Experiment written inline)"))
        return None
    if "experiment" in step:
        part = doc.part(path + ("experiment",))
        if not isinstance(part.data, dict) or part.data.get("kind") != "Experiment":
            problems.append(doc.problem(path + ("experiment",), "an inline experiment is a full Experiment "
                                        "document: apiVersion: chaoslab.io/v1alpha1, kind: Experiment, "
                                        "metadata, spec"))
            return None
        try:
            return loader.experiment_from_document(part, None)  # no file of its own to copy into the run
        except SpecError as exc:
            problems += exc.problems
            return None
    file = base / step["file"]
    try:
        experiments = loader.load(file)
    except SpecError as exc:
        problems.append(doc.problem(path + ("file",), f"{step['file']!r} does not load (its problems follow)"))
        problems += exc.problems
        return None
    if len(experiments) != 1:
        problems.append(doc.problem(path + ("file",), (
            f"{step['file']!r} holds {len(experiments)} experiments; a step runs one: give each its own step "
            "(write it inline, or put it in its own file)")))
        return None
    return experiments[0]


def _order(doc: Document, steps: list[Step], problems: list[str]) -> list[Step]:
    """File order, except that a step follows every step it names in `after` (a stable topological sort)."""
    names = [s.name for s in steps]
    for i, s in enumerate(steps):
        for j, dep in enumerate(s.after):
            if dep not in names:
                problems.append(doc.problem(("spec", "steps", i, "after", j), (
                    f"{dep!r} is not a step of this game day; steps: {', '.join(names)}"
                    f"{loader._suggest(dep, names)}")))
            elif dep == s.name:
                problems.append(doc.problem(("spec", "steps", i, "after", j), "a step cannot wait for itself"))
    placed: list[Step] = []
    left = list(steps)
    while left:
        ready = next((s for s in left if all(d in {p.name for p in placed} or d not in names or d == s.name
                                             for d in s.after)), None)
        if ready is None:
            problems.append(doc.problem(("spec", "steps"), (
                "the steps wait for each other in a circle: " + ", ".join(
                    f"{s.name} after {', '.join(s.after)}" for s in left) + "; remove one `after`")))
            return placed + left
        placed.append(ready)
        left.remove(ready)
    return placed


def game_day_from_document(doc: Document, source: Path | None) -> GameDay:
    """One `kind: GameDay` document (already checked against the schema) as a `GameDay`; SpecError with
    every problem, including those of the experiments it names."""
    problems: list[str] = []
    spec: dict[str, Any] = doc.data["spec"]
    meta: dict[str, Any] = doc.data["metadata"]
    base = source.parent if source else Path(".")
    target = None
    if "target" in spec:
        t = dict(spec["target"])
        target = TargetSpec(t.pop("kind"), t)
    window = _window(doc, problems)
    day_overrides = _overrides(doc, ("spec", "overrides"), spec.get("overrides") or {}, problems)
    day_pause = (_seconds(doc, ("spec", "pause"), spec["pause"], problems) or 0.0) if "pause" in spec else 0.0
    steps: list[Step] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(spec["steps"]):
        path: FieldPath = ("spec", "steps", i)
        exp = _step_experiment(doc, i, raw, base, problems)
        if exp is None:
            continue
        changes: dict[str, Any] = {**day_overrides,
                                   **_overrides(doc, path + ("overrides",), raw.get("overrides") or {}, problems)}
        runs = raw.get("runs", spec.get("repeat"))
        if runs is not None:
            changes["runs"] = int(runs)
        if target is not None:
            changes["target"] = target
        exp = dataclasses.replace(exp, **changes)
        name = raw.get("name", exp.name)
        if name in seen:
            problems.append(doc.problem(path + (("name",) if "name" in raw else ()), (
                f"a second step named {name!r} (the first is at line {seen[name]}); give one a `name`")))
        seen.setdefault(name, doc.line_of(path))
        pause = (_seconds(doc, path + ("pause",), raw["pause"], problems) or 0.0) if "pause" in raw else day_pause
        steps.append(Step(name, exp, tuple(raw.get("after", ())), pause, raw.get("confirm", ""), doc.at(path)))
    notify = []
    for i, n in enumerate(spec.get("notify") or []):
        path = ("spec", "notify", i)
        if ("webhook" in n) == ("command" in n):
            problems.append(doc.problem(path, "give exactly one of `webhook: URL` or `command: [PROGRAM, ARG…]`"))
            continue
        command = n.get("command")
        try:
            argv = tuple(shlex.split(command) if isinstance(command, str) else command) if command else None
        except ValueError as exc:  # an unclosed quote
            problems.append(doc.problem(path + ("command",), f"{command!r:.70} cannot be split into arguments "
                                        f"({exc}); close the quote or give a list: [PROGRAM, ARG…]"))
            continue
        if argv == ():
            problems.append(doc.problem(path + ("command",), "names no program; give [PROGRAM, ARG…]"))
            continue
        notify.append(Notification(n.get("webhook"), argv, n.get("format", "json"), n.get("on", "always"),
                                   doc.at(path)))
    ordered = _order(doc, steps, problems)
    if problems:
        raise SpecError(problems)
    abort = {m: seconds for m, v in (spec.get("abort") or {}).items()
             if (seconds := _seconds(doc, ("spec", "abort", m), v, problems)) is not None}
    if problems:
        raise SpecError(problems)
    return GameDay(meta["name"], tuple(ordered), meta.get("description", ""), target, window, abort, tuple(notify),
                   source, doc.data)


def load_game_day_text(text: str, file: str, source: Path | None = None) -> GameDay:
    docs, problems = parse(text, file)
    for doc in docs:
        _plain_dates(doc.data)
    if not problems and (len(docs) != 1 or not isinstance(docs[0].data, dict)
                         or docs[0].data.get("kind") != "GameDay"):
        kinds = [d.data.get("kind") if isinstance(d.data, dict) else None for d in docs]
        problems.append(f"{file}:1: expected one document with apiVersion: {loader.API_VERSION}, kind: GameDay "
                        f"(found kind {', '.join(map(str, kinds)) or 'nothing'}); run experiments with "
                        "`chaoslab run`")
    if problems:
        raise SpecError(problems)
    found = check(docs[0])
    if found:
        raise SpecError(found)
    return game_day_from_document(docs[0], source)


def load_game_day(path: Path) -> GameDay:
    """The game day in one file; raises SpecError with every problem in it and in the files it names."""
    return load_game_day_text(loader._read(path), str(path), path)
