"""chaoslab experiments ⇄ Chaos Toolkit experiments. Pure functions: `chaoslab export --to chaostoolkit`
calls `to_chaostoolkit`; the spec loader calls `experiment_from_chaostoolkit` for a file with a `method`
(so `chaoslab run` and `chaoslab validate` take Chaos Toolkit files); the control calls `control_experiment`.

The mapping (docs/chaostoolkit.md):

    chaoslab                         Chaos Toolkit
    metadata.name, description       title, description
    spec.target                      configuration.chaoslab_target ("lab" or "lab:NAME"), ${chaoslab_target}
    (consent, --yes)                 configuration.chaoslab_yes (false), ${chaoslab_yes} to actions and control
    spec.steadyState                 steady-state-hypothesis: probe steady_state(conditions), tolerance true
    spec.faults[i]                   method: action inject_fault(kind, params, key "<name>-<i+1>")
    spec.duration                    the pause after the last action
    the undo of each fault           rollbacks: revert_fault(key) in reverse order
    spec.slo, probes, abort, settle, the chaoslab control's arguments (same names and spellings)
    recoveryTimeout, steadyState,
    blastRadius

Import refuses, with file, line, path and reason, whatever chaoslab cannot run itself: activities of other
extensions or providers, other controls, configuration it cannot resolve.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.spec.durations import parse_duration
from chaoslab.spec.loader import Document, FieldPath, check, dotted, experiment_from_document
from chaoslab.spec.model import METRICS, Experiment, FaultSpec
from chaoslab.spec.serialize import _plain

ACTIONS = "chaoslab.chaostoolkit.actions"
PROBES = "chaoslab.chaostoolkit.probes"
CONTROL = "chaoslab.chaostoolkit.control"
TARGET_VAR, RUNS_DIR_VAR, YES_VAR = "chaoslab_target", "chaoslab_runs_dir", "chaoslab_yes"
#: Per-kind actions → (fault kind, argument → parameter); arguments not listed are the action's own.
KIND_ACTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "kill_process": ("kill-process", {a: a for a in ("component", "select", "signal", "count")}),
    "partition": ("partition", {a: a for a in ("shape", "select", "traffic", "minority", "direction",
                                               "clients", "deadman")}),
    "network_degrade": ("network-degrade", {a: a for a in ("select", "loss", "delay", "jitter", "traffic",
                                                           "deadman")}),
}
#: Control arguments that are chaoslab spec fields, spelled as in the spec.
CONTROL_FIELDS = ("steadyState", "probes", "slo", "abort", "settle", "recoveryTimeout", "blastRadius")
#: Single-value probes of the hypothesis → the steady-state condition they amount to (with a tolerance).
PROBE_CONDITIONS = {("apiserver_ready", "lb"): "apiserver-ready", ("etcd_leader", None): "etcd-leader",
                    ("lease_holder", "kube-scheduler"): "scheduler-leader",
                    ("lease_holder", "kube-controller-manager"): "controller-manager-leader"}


# ---- export ----------------------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _goal(metric: str, value: float) -> float | str:
    return _duration(value) if METRICS.get(metric) == "s" else (int(value) if value == int(value) else value)


def _python(module: str, func: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "python", "module": module, "func": func, "arguments": dict(arguments)}


def to_chaostoolkit(experiment: Experiment) -> dict[str, Any]:
    """An equivalent Chaos Toolkit experiment (JSON-ready). Runs once: `spec.runs` is the caller's to warn
    about (see `export_notes`)."""
    e = experiment
    target = "lab" if e.target is None or not e.target.params.get("name") else f"lab:{e.target.params['name']}"
    common = {"target": f"${{{TARGET_VAR}}}"}
    consent = {"yes": f"${{{YES_VAR}}}"}
    runs_dir = {"runs_dir": f"${{{RUNS_DIR_VAR}}}"}
    method: list[dict[str, Any]] = []
    rollbacks: list[dict[str, Any]] = []
    for i, fault in enumerate(e.faults, start=1):
        key = f"{e.name}-{i}"
        method.append({"type": "action", "name": f"inject-{fault.kind}-{i}",
                       "provider": _python(ACTIONS, "inject_fault", {
                           "kind": fault.kind, "params": _plain(fault.params), **common,
                           "duration": e.duration, "key": key, **runs_dir, **consent})})
        rollbacks.insert(0, {"type": "action", "name": f"revert-{fault.kind}-{i}",
                             "provider": _python(ACTIONS, "revert_fault", {**common, "key": key, **runs_dir})})
    if method:
        method[-1]["pauses"] = {"after": e.duration}
    arguments: dict[str, Any] = {
        "name": e.name, "steadyState": list(e.steady_state), "probes": _plain(e.probes),
        "slo": {s.metric: {s.aggregate: _goal(s.metric, s.threshold)} for s in e.slos},
        "settle": _duration(e.settle), "recoveryTimeout": _duration(e.recovery_timeout), **common, **runs_dir,
        **consent}
    if e.abort:
        arguments["abort"] = {m: _goal(m, v) for m, v in e.abort.items()}
    if radius := {k: v for k, v in dataclasses.asdict(e.blast_radius).items() if v not in (None, False)}:
        arguments["blastRadius"] = radius
    return {
        "version": "1.0.0",
        "title": e.name,
        # `chaos run` and `chaos validate` refuse an experiment without a description.
        "description": e.description or _description(e),
        "tags": ["chaoslab", "kubernetes", "control-plane"],
        # chaoslab_yes: consent for a target that is not the lab (`chaos run --var chaoslab_yes=true`), as
        # `chaoslab run --yes`; the allow-list in chaoslab's config file works without it.
        "configuration": {TARGET_VAR: target, RUNS_DIR_VAR: "runs", YES_VAR: False},
        # chaoslab reverts every fault, whatever happened: play the rollbacks even after a failure.
        "runtime": {"rollbacks": {"strategy": "always"}},
        "controls": [{"name": "chaoslab", "provider": {"type": "python", "module": CONTROL,
                                                       "arguments": arguments}}],
        "steady-state-hypothesis": {
            "title": f"chaoslab steady state: {', '.join(e.steady_state)}",
            "probes": [{"type": "probe", "name": "chaoslab-steady-state", "tolerance": True,
                        "provider": _python(PROBES, "steady_state", {"conditions": list(e.steady_state),
                                                                     **common, "timeout": 60})}]},
        "method": method,
        "rollbacks": rollbacks,
    }


def _description(e: Experiment) -> str:
    """What the experiment does, for one that has no description of its own."""
    faults = ", ".join(f.kind for f in e.faults) or "no fault"
    return f"chaoslab experiment {e.name}: {faults} for {_duration(e.duration)}, judged against its SLOs."


def export_notes(experiment: Experiment) -> list[str]:
    """What the Chaos Toolkit experiment cannot say, for the CLI to print."""
    notes = []
    if experiment.runs > 1:
        notes.append(f"{experiment.name}: spec.runs is {experiment.runs}, but Chaos Toolkit runs an experiment "
                     f"once; run `chaos run` {experiment.runs} times (each writes its own chaoslab run directory)")
    if experiment.workload is not None:
        files = " ".join(f"-f {m}" for m in experiment.workload.manifests)
        notes.append(f"{experiment.name}: spec.workload is not carried over: create the workload before "
                     f"`chaos run` (kubectl apply {files}, relative to the experiment file) and delete it after")
    return notes


# ---- import ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Mapped(Document):
    """The chaoslab document built from a Chaos Toolkit one: its data is chaoslab's, its lines and places
    are the Chaos Toolkit file's, so every problem points into the file the user wrote."""

    places: tuple[tuple[FieldPath, FieldPath, Mapping[str, str]], ...] = field(default=())
    """(chaoslab path prefix, Chaos Toolkit path prefix, renamed keys right under it)."""

    def source_path(self, path: FieldPath) -> FieldPath:
        for prefix, ctk, rename in sorted(self.places, key=lambda p: -len(p[0])):
            if path[:len(prefix)] == prefix:
                rest = path[len(prefix):]
                if rest and isinstance(rest[0], str):
                    rest = (rename.get(rest[0], rest[0]), *rest[1:])
                return ctk + rest
        return path

    def line_of(self, path: FieldPath) -> int:
        return Document.line_of(self, self.source_path(path))

    def at(self, path: FieldPath) -> str:
        return f"{self.file}:{self.line_of(path)} {dotted(self.source_path(path))}".rstrip()


class _Reader:
    """Walks a Chaos Toolkit document, collecting the chaoslab spec and every problem."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[str] = []
        self.config: dict[str, Any] = {}
        self.places: list[tuple[FieldPath, FieldPath, Mapping[str, str]]] = []

    def refuse(self, path: FieldPath, why: str) -> None:
        self.problems.append(self.doc.problem(path, why))

    def configuration(self) -> None:
        for name, value in (self.doc.data.get("configuration") or {}).items():
            if isinstance(value, dict) and value.get("type") == "env":
                value = os.environ.get(str(value.get("key")), value.get("default"))
                if value is None:
                    self.refuse(("configuration", name), f"environment variable {name!r} is not set and has no "
                                "default")
                    continue
            elif isinstance(value, dict):
                self.refuse(("configuration", name), f"a {value.get('type')!r} value cannot be resolved by "
                            "chaoslab; give the value itself or {type: env, key: ..., default: ...}")
                continue
            self.config[name] = value

    def subst(self, value: Any, path: FieldPath) -> Any:
        """`${name}` from the configuration, as chaoslib substitutes it."""
        if isinstance(value, dict):
            return {k: self.subst(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.subst(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        whole = re.fullmatch(r"\$\{(\w+)\}", value)
        if whole and whole.group(1) in self.config:
            return self.config[whole.group(1)]  # a whole value keeps its type, as in chaoslib

        def one(m: re.Match[str]) -> str:
            if m.group(1) not in self.config:
                self.refuse(path, f"${{{m.group(1)}}} is not in the experiment's configuration")
                return m.group(0)
            return str(self.config[m.group(1)])
        return re.sub(r"\$\{(\w+)\}", one, value)

    def python(self, activity: Any, path: FieldPath, module: str) -> tuple[str, dict[str, Any]] | None:
        """(func, arguments) of a python-provider activity of `module`; None (and a problem) otherwise."""
        provider = activity.get("provider") if isinstance(activity, dict) else None
        if isinstance(activity, dict) and "ref" in activity and provider is None:
            self.refuse(path, f"a reference ({activity['ref']!r}) cannot be mapped; write the activity out")
            return None
        if not isinstance(provider, dict) or provider.get("type") != "python":
            kind = provider.get("type") if isinstance(provider, dict) else None
            self.refuse((*path, "provider") if provider else path,
                        f"a {kind or 'missing'} provider cannot be mapped; chaoslab runs only python "
                        f"activities of {module}")
            return None
        if provider.get("module") != module:
            self.refuse((*path, "provider", "module"), f"{provider.get('module')!r} is not chaoslab's; chaoslab "
                        f"runs only its own activities here ({module})")
            return None
        args = self.subst(provider.get("arguments") or {}, (*path, "provider", "arguments"))
        return str(provider.get("func")), args


def _seconds(value: Any) -> float:
    return parse_duration(value, "pause")


def _fault(func: str, args: Mapping[str, Any], path: FieldPath) -> tuple[str, dict[str, Any], FieldPath,
                                                                      Mapping[str, str]]:
    """(kind, params, where the params are, parameter → argument name) of a chaoslab fault action."""
    if func == "inject_fault":
        params = args.get("params") or {}
        return (str(args.get("kind")), dict(params) if isinstance(params, Mapping) else {},
                (*path, "provider", "arguments", "params"), {})
    kind, names = KIND_ACTIONS[func]
    params = {names[a]: v for a, v in args.items() if a in names and not (a == "minority" and not v)}
    return kind, params, (*path, "provider", "arguments"), {v: k for k, v in names.items()}


def _fault_window(r: _Reader, method: list[Any]) -> float:
    """Seconds the faults hold: every pause from the first injection until a revert in the method (if any)
    or its end; without pauses, the longest `duration` argument of the fault actions."""
    holding, paused, own = False, 0.0, 0.0
    for i, activity in enumerate(method):
        provider = activity.get("provider") if isinstance(activity, dict) else None
        func = provider.get("func") if isinstance(provider, dict) and provider.get("module") == ACTIONS else None
        if func == "revert_fault":
            break
        pauses = r.subst(activity.get("pauses") or {}, ("method", i, "pauses")) if isinstance(activity, dict) else {}
        try:
            if holding:
                paused += _seconds(pauses.get("before", 0))
            if func == "inject_fault" or func in KIND_ACTIONS:
                holding = True
                own = max(own, _seconds((provider or {}).get("arguments", {}).get("duration") or 0))
            if holding:
                paused += _seconds(pauses.get("after", 0))
        except ValueError as exc:
            r.refuse(("method", i, "pauses"), str(exc))
    return paused or own


def experiment_from_chaostoolkit(doc: Document, source: Path | None = None) -> Experiment:
    """The chaoslab experiment a Chaos Toolkit experiment amounts to; `SpecError` listing everything that
    cannot be mapped (file, line, path, why)."""
    data: dict[str, Any] = doc.data
    if shape := check(doc, "chaostoolkit"):  # the reader below may then trust every type it reads
        raise SpecError(shape)
    r = _Reader(doc)
    r.configuration()
    name = _slug(data.get("title") or Path(doc.file).stem)
    faults: list[dict[str, Any]] = []
    spec: dict[str, Any] = {"faults": faults}
    r.places += [(("metadata",), ("title",), {}), (("spec", "duration"), ("method",), {}),
                 (("spec", "target"), ("configuration", TARGET_VAR), {})]
    targets: set[str] = set()
    method = data.get("method") or []
    for i, activity in enumerate(method):
        path: FieldPath = ("method", i)
        module = PROBES if isinstance(activity, dict) and activity.get("type") == "probe" else ACTIONS
        got = r.python(activity, path, module)
        if got is None or module == PROBES or got[0] == "revert_fault":
            continue  # probes observe (chaoslab's sample all along); a revert ends the fault window
        func, args = got
        if func != "inject_fault" and func not in KIND_ACTIONS:
            r.refuse((*path, "provider", "func"), f"{func!r} is not an action of {ACTIONS}; known: inject_fault, "
                     f"revert_fault, {', '.join(KIND_ACTIONS)}")
            continue
        if func == "inject_fault" and not isinstance(args.get("params") or {}, Mapping):
            r.refuse((*path, "provider", "arguments", "params"), f"{args['params']!r:.60} is not a mapping; give the "
                     "fault's parameters as one, e.g. {component: etcd, select: leader}")
            continue
        kind, params, place, rename = _fault(func, args, path)
        n = len(faults)
        r.places += [(("spec", "faults", n), place, rename),
                     (("spec", "faults", n, "kind"), (*path, "provider", "arguments",
                                                      "kind" if func == "inject_fault" else "func"), {})]
        faults.append({"kind": kind, **params})
        if args.get("target"):
            targets.add(str(args["target"]))
    spec["duration"] = _fault_window(r, method)
    if not method:
        r.refuse(("method",), "is empty; chaoslab needs at least one of its faults")
    elif not faults and not r.problems:
        r.refuse(("method",), f"has no chaoslab fault (an action of {ACTIONS}); nothing to inject")
    elif faults and not spec["duration"]:
        r.refuse(("method",), "nothing says how long the faults hold: add `pauses: {after: SECONDS}` to the "
                 "last fault action")

    conditions: list[str] = []
    for j, probe in enumerate((data.get("steady-state-hypothesis") or {}).get("probes") or []):
        path = ("steady-state-hypothesis", "probes", j)
        got = r.python(probe, path, PROBES)
        if got is None:
            continue
        func, args = got
        subject = (args.get("endpoint", "lb") if func == "apiserver_ready" else
                   args.get("lease", "kube-scheduler") if func == "lease_holder" else None)
        if func == "steady_state":
            given = args.get("conditions") or []
            conditions += [c for c in (given if isinstance(given, list) else [given]) if c not in conditions]
            r.places.append((("spec", "steadyState"), (*path, "provider", "arguments", "conditions"), {}))
        elif isinstance(subject, (str, type(None))) and (func, subject) in PROBE_CONDITIONS:
            conditions.append(PROBE_CONDITIONS[(func, subject)])
        else:
            r.refuse((*path, "provider", "func"), f"{func!r} cannot be mapped to a steady-state condition; use "
                     "steady_state(conditions)")
        if args.get("target"):
            targets.add(str(args["target"]))
    if conditions:
        spec["steadyState"] = conditions

    for k, rollback in enumerate(data.get("rollbacks") or []):
        got = r.python(rollback, ("rollbacks", k), ACTIONS)
        if got and got[0] != "revert_fault":
            r.refuse(("rollbacks", k, "provider", "func"), f"{got[0]!r} is not a revert; chaoslab reverts its "
                     "faults itself (revert_fault)")

    for c, control in enumerate(data.get("controls") or []):
        path = ("controls", c)
        provider = control.get("provider") if isinstance(control, dict) else None
        if not isinstance(provider, dict) or provider.get("module") != CONTROL:
            label = control.get("name") if isinstance(control, dict) else control
            r.refuse(path, f"control {label!r} is not chaoslab's ({CONTROL}); chaoslab cannot run other controls")
            continue
        args = r.subst(provider.get("arguments") or {}, (*path, "provider", "arguments"))
        for field_name in CONTROL_FIELDS:
            if field_name in args:
                spec[field_name] = args[field_name]
                r.places.append((("spec", field_name), (*path, "provider", "arguments", field_name), {}))
        if args.get("target"):
            targets.add(str(args["target"]))
        if args.get("name"):
            name = str(args["name"])
    if data.get("secrets"):
        r.refuse(("secrets",), "chaoslab's activities take no secrets; remove them or run with `chaos run`")

    if len(targets) > 1:
        r.refuse(("method",), f"activities name different targets ({', '.join(sorted(targets))}); chaoslab runs "
                 "one experiment against one target")
    elif targets:
        kind, _, lab = next(iter(targets)).partition(":")
        spec["target"] = {"kind": kind, **({"name": lab} if lab else {})}
    meta = {"name": name, **({"description": data["description"]} if data.get("description") else {})}
    full = {"apiVersion": "chaoslab.io/v1alpha1", "kind": "Experiment", "metadata": meta, "spec": spec}
    if r.problems and not (faults and spec["duration"]):
        raise SpecError(r.problems)
    try:  # what did map is checked too, so every problem is reported at once
        experiment = experiment_from_document(_Mapped(full, doc.lines, doc.line, doc.file, tuple(r.places)), source)
    except SpecError as exc:
        r.problems += exc.problems
    if r.problems:
        raise SpecError(sorted(r.problems, key=lambda p: int(m.group(1)) if (m := re.match(r".*?:(\d+)", p)) else 0))
    return experiment


def control_experiment(ctk: Mapping[str, Any], arguments: Mapping[str, Any], file: str = "<chaostoolkit>") -> Experiment:
    """What the control judges: the chaoslab experiment of a Chaos Toolkit experiment that may also run other
    extensions' activities. Only the control's arguments and chaoslab's own faults are read; a method
    without chaoslab faults gets a placeholder fault (`chaostoolkit-method`) so reports have a row."""
    spec = {k: arguments[k] for k in CONTROL_FIELDS if k in arguments}
    doc = Document({"apiVersion": "chaoslab.io/v1alpha1", "kind": "Experiment",
                    "metadata": {"name": str(arguments.get("name") or _slug(ctk.get("title")))},
                    "spec": {**spec, "faults": [{"kind": "kill-process", "component": "etcd"}], "duration": 1}},
                    {}, 1, f"{file} controls[chaoslab].arguments")
    exp = experiment_from_document(doc, None)
    faults = []
    for i, activity in enumerate(ctk.get("method") or []):
        provider = activity.get("provider") if isinstance(activity, dict) else None
        if isinstance(provider, dict) and provider.get("module") == ACTIONS and \
                provider.get("func") in ("inject_fault", *KIND_ACTIONS):
            kind, params, _, _ = _fault(str(provider["func"]), provider.get("arguments") or {}, ("method", i))
            faults.append(FaultSpec(kind, params))
    reader = _Reader(Document(ctk, {}, 1, file))
    reader.configuration()
    method = list(ctk.get("method") or [])
    duration = _fault_window(reader, method) if faults else sum(  # other extensions' faults: the whole method
        _seconds(reader.subst(pauses.get(when) or 0, ())) for a in method if isinstance(a, dict)
        for pauses in [a.get("pauses") or {}] for when in ("before", "after"))
    return dataclasses.replace(exp, faults=tuple(faults) or (FaultSpec("chaostoolkit-method", {}),),
                               duration=duration, raw=_plain(ctk), description=str(ctk.get("description", "")))


def _slug(title: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(title or "chaostoolkit")).strip("-") or "chaostoolkit"
