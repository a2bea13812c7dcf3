"""YAML → `Experiment`: parse with line numbers, validate against experiment.schema.json, then build the
frozen model (chaoslab.spec.model). Called by `chaoslab run` (through `load`), `chaoslab validate`
(`validate_paths`) and the probe-set loader (`parse`, `check`).

Every problem in a file is collected, then one `SpecError` is raised; each problem is one line
`FILE:LINE FIELD.PATH: what is wrong (the bad value) and what is allowed`. Lines come from the composed
YAML nodes; a JSON-Schema error's `absolute_path` is looked up in the same table.

    >>> [exp] = load_text(EXAMPLE)                                          # doctest: +SKIP
    >>> exp.faults[0].params["signal"], exp.slos[0].threshold               # doctest: +SKIP
    ('KILL', 30.0)
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeAlias

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from chaoslab.errors import SpecError
from chaoslab.spec import checks
from chaoslab.spec.durations import parse_duration
from chaoslab.spec.model import METRICS, BlastRadius, Experiment, FaultSpec, SloSpec, TargetSpec
from chaoslab.spec.reading import BoundedLoader, read_text, reader_problem
from chaoslab.spec.workload import Workload, object_problems

FieldPath: TypeAlias = tuple[str | int, ...]

API_VERSION = "chaoslab.io/v1alpha1"
#: Compact-form `spec.target` → the component its fault kills.
COMPACT_COMPONENTS = {"scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager",
                      "apiserver": "kube-apiserver", "etcd": "etcd"}
_TAG = "tag:yaml.org,2002:"  # YAML core tags, as resolved by the composer
_EXPECT = f"an experiment (apiVersion: {API_VERSION}, kind: Experiment; or kind: ControlPlaneChaos)"


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema shipped with the package (published as docs/experiment.schema.json too)."""
    text = resources.files("chaoslab.spec").joinpath("experiment.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


#: Largest number any field takes (2^53: every integer below it is exact as a float too).
MAX_NUMBER = 2**53


def _is_integer(checker: Any, value: Any) -> bool:
    # JSON Schema calls 2.0 an integer; Python code downstream (range, sleep counts) does not.
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_NUMBER


def _is_number(checker: Any, value: Any) -> bool:
    # NaN passes both `minimum` and `maximum` (every comparison is false): numbers are finite and bounded.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= MAX_NUMBER if isinstance(value, int) else math.isfinite(value) and abs(value) <= MAX_NUMBER


_Validator = validators.extend(Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"integer": _is_integer, "number": _is_number}))


@cache
def _validator() -> Draft202012Validator:
    return _Validator(schema())


@cache
def _validator_for(definition: str) -> Draft202012Validator:
    """A validator for one `$defs` entry of the schema (the Chaos Toolkit import's)."""
    return _Validator({"$ref": f"#/$defs/{definition}", "$defs": schema()["$defs"]})


@dataclass(frozen=True)
class Document:
    """One YAML document as loaded, with the line of every mapping key and sequence item."""

    data: Any
    lines: Mapping[FieldPath, int]
    line: int
    """Line where the document starts."""
    file: str
    prefix: FieldPath = field(default=(), kw_only=True)
    """Where `data` sits in the file's document when it is part of one (an experiment written inline in a
    game day: `("spec", "steps", 2, "experiment")`); places are reported with it."""

    def line_of(self, path: FieldPath) -> int:
        # A path into a merged (`<<`) mapping or a missing key has no line of its own: use its parent's.
        path = self.prefix + path
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, self.line)

    def at(self, path: FieldPath) -> str:
        """`FILE:LINE field.path`: the place used in problems and in `where`."""
        return f"{self.file}:{self.line_of(path)} {dotted(self.prefix + path)}".rstrip()

    def part(self, path: FieldPath) -> Document:
        """The document's value at `path` as a document of its own, with the same lines and places."""
        data = self.data
        for key in path:
            data = data[key]
        return Document(data, self.lines, self.line_of(path), self.file, prefix=self.prefix + path)

    def problem(self, path: FieldPath, message: str) -> str:
        return f"{self.at(path)}: {message}" if path else f"{self.file}:{self.line}: {message}"


def dotted(path: FieldPath) -> str:
    """`("spec", "faults", 0, "signal")` → `spec.faults[0].signal`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---- YAML with lines -----------------------------------------------------------------------------------
def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int],
          dupes: list[tuple[FieldPath, int, int]], active: set[int]) -> None:
    if id(node) in active:  # a recursive alias (&a [*a]) would never end
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            key = key_node.value if key_node.tag == _TAG + "str" else (
                loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None)
            if key is None:
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                dupes.append((path + (key,), line, seen[key]))
            seen.setdefault(key, line)
            lines[path + (key,)] = line  # the last one wins, as in the loaded mapping
            _walk(loader, value, path + (key,), lines, dupes, active)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(loader, item, path + (i,), lines, dupes, active)
    active.discard(id(node))


def parse(text: str, file: str) -> tuple[list[Document], list[str]]:
    """Every non-empty document in `text`, and the problems found while reading YAML (syntax errors end the
    parse; documents before one are still returned). YAML is read with `reading.BoundedLoader`: nesting,
    aliases and what they expand to are bounded, and a value no constructor can read is a problem at its line."""
    docs: list[Document] = []
    problems: list[str] = []
    try:
        loader = BoundedLoader(text)  # the reader refuses control characters at once
    except yaml.YAMLError as exc:
        return [], [reader_problem(exc, text, file)]
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            lines: dict[FieldPath, int] = {}
            dupes: list[tuple[FieldPath, int, int]] = []
            _walk(loader, node, (), lines, dupes, set())
            problems += [f"{file}:{line} {dotted(path)}: duplicate key "
                         f"({'on this line' if line == first else f'first at line {first}'}); "
                         "YAML keeps only the last one: remove one" for path, line, first in dupes]
            data = loader.construct_document(node)
            if data is not None:  # `---` with nothing after it
                docs.append(Document(data, lines, node.start_mark.line + 1, file))
    except yaml.YAMLError as exc:
        problems.append(reader_problem(exc, text, file))
    finally:
        loader.dispose()
    return docs, problems


# ---- schema errors as sentences ------------------------------------------------------------------------
_TYPES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
          "number": "a number", "boolean": "true or false", "null": "empty"}


def _kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)) and not _is_number(None, value):
        return f"beyond the largest number chaoslab takes ({MAX_NUMBER})"
    if isinstance(value, float) and value.is_integer():
        return "a number with a decimal point"
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}.get(
        type(value), f"a {type(value).__name__}")


def _show(value: Any) -> str:
    """The bad value, short: strings quoted as in the example `'HUP'`, mappings as YAML flow style."""
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {_show(v) if isinstance(v, (dict, list)) else v}"
                               for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(str(v) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _resolve(sub: Any) -> Mapping[str, Any]:
    """A subschema with its local `$ref` followed (for descriptions and examples)."""
    if not isinstance(sub, dict):
        return {}
    ref = sub.get("$ref", "")
    if ref.startswith("#/$defs/"):
        siblings = {k: v for k, v in sub.items() if k != "$ref"}
        return {**schema()["$defs"][ref.removeprefix("#/$defs/")], **siblings}
    return sub


def _suggest(word: Any, choices: Iterable[Any]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _explain(err: ValidationError) -> Iterator[tuple[FieldPath, str]]:
    """(path, message) for one schema error; one error can name several fields (unknown keys)."""
    path: FieldPath = tuple(err.absolute_path)
    sub = _resolve(err.schema)
    value, rule, arg = err.instance, err.validator, err.validator_value
    expected = sub.get("description", "")
    if rule == "additionalProperties":
        allowed = list(sub.get("properties", {}))
        noun = "metric" if path and path[-1] in ("slo", "abort", "monitoring") else "field"
        for key in (k for k in value if k not in sub.get("properties", {})):
            yield path + (key,), f"unknown {noun}{_suggest(key, allowed)} (allowed: {', '.join(allowed)})"
    elif rule == "required":
        props = sub.get("properties", {})
        for key in (k for k in arg if k not in value):
            prop = _resolve(props.get(key))
            need = f"one of {', '.join(prop['enum'])}" if "enum" in prop else prop.get("description", "")
            yield path + (key,), "required but missing" + (f" ({need})" if need else "")
    elif rule == "enum":
        yield path, f"{_show(value)} is not one of {', '.join(map(str, arg))}{_suggest(value, arg)}"
    elif rule == "const":
        yield path, f"{_show(value)} is not supported; use {arg}"
    elif rule == "type":
        types = [arg] if isinstance(arg, str) else arg
        # Scalars read best by their description (`a duration like 30s`); mappings by an example.
        want = expected if expected and len(expected) < 90 else " or ".join(_TYPES[t] for t in types)
        example = f", e.g. {_show(sub['examples'][0])}" if sub.get("examples") and want != expected else ""
        shown = "an empty value" if value is None else f"{_show(value)} is {_kind_of(value)}"
        yield path, f"{shown}; expected {want}{example}"
    elif rule == "pattern":
        yield path, f"{_show(value)} is not valid; expected {expected or 'a value matching ' + arg}" + \
            _suggest(value, sub.get("examples", []))
    elif rule in ("minimum", "exclusiveMinimum"):
        yield path, f"{_show(value)} is too small; the minimum is {arg}"
    elif rule in ("maximum", "exclusiveMaximum"):
        yield path, f"{_show(value)} is too large; the maximum is {arg}"
    elif rule == "maxLength":
        yield path, f"{_show(value)} is {len(value)} characters long; at most {arg}"
    elif rule == "maxItems":
        yield path, f"a list of {len(value)} items; at most {arg}"
    elif rule in ("minProperties", "maxProperties") and sub.get("maxProperties") == 1:
        got = f"{_show(value)} has {len(value)} entries" if value else "{} is empty"
        yield path, f"{got}; give exactly one of {', '.join(sub.get('properties', {}))}, e.g. " + \
            _show(sub.get("examples", [{"max": 1}])[0])
    elif rule == "minItems":
        yield path, f"{_show(value)} is empty; list at least {arg}"
    elif rule == "uniqueItems":
        yield path, f"{_show(value)} names an item twice"
    elif rule == "minLength":
        yield path, f"{_show(value)} is empty"
    else:
        message = err.message
        yield path, message if len(message) <= 200 else message[:197] + "..."


@cache
def _plugin_fault_kinds() -> frozenset[str]:
    # Third-party faults (entry points `chaoslab.faults`) are not in the schema's enum; their parameters
    # are checked by the fault's own params type when the plan is made. Names only: nothing is imported.
    return frozenset(ep.name for ep in entry_points(group="chaoslab.faults"))


def check(doc: Document, definition: str | None = None) -> list[str]:
    """Problems of one document against the schema (or one of its `$defs`: `chaostoolkit`), in line order."""
    if not isinstance(doc.data, dict):
        what = f"{_kind_of(doc.data)} ({_show(doc.data)})"
        return [doc.problem((), f"the document is {what}; expected {_EXPECT}")]
    found: list[tuple[int, str]] = []
    try:
        for err in (_validator() if definition is None else _validator_for(definition)).iter_errors(doc.data):
            path = tuple(err.absolute_path)
            if err.validator == "enum" and path[-1:] == ("kind",) and path[-3:-2] == ("faults",) \
                    and isinstance(err.instance, str) and err.instance in _plugin_fault_kinds():
                continue
            found += [(doc.line_of(p), doc.problem(p, msg)) for p, msg in _explain(err)]
    except RecursionError:  # `&a [*a]` loads as a list that contains itself
        return [doc.problem((), "the document contains itself through a YAML alias; expand the alias")]
    return [msg for _, msg in sorted(dict.fromkeys(found))]


# ---- the model -----------------------------------------------------------------------------------------
def _seconds(doc: Document, path: FieldPath, value: Any) -> float:
    return parse_duration(value, doc.at(path))


def _threshold(doc: Document, path: FieldPath, metric: str, value: Any) -> float:
    return _seconds(doc, path, value) if METRICS[metric] == "s" else float(value)


def _fault_defaults(kind: str) -> dict[str, Any]:
    params = schema()["$defs"].get(f"fault-{kind}", {}).get("properties", {})
    return {k: sub["default"] for k, sub in params.items() if isinstance(sub, dict) and "default" in sub}


def _full(doc: Document, source: Path | None) -> Experiment:
    spec: dict[str, Any] = doc.data["spec"]
    kw: dict[str, Any] = {}
    if "target" in spec:
        target = dict(spec["target"])
        kw["target"] = TargetSpec(target.pop("kind"), target)
    if "blastRadius" in spec:
        kw["blast_radius"] = BlastRadius(**spec["blastRadius"])
    if "steadyState" in spec:
        kw["steady_state"] = tuple(spec["steadyState"])
    if "probes" in spec:
        kw["probes"] = tuple(_inline_probe(doc, i, p) if isinstance(p, dict) else p
                             for i, p in enumerate(spec["probes"]))
    if "runs" in spec:
        kw["runs"] = spec["runs"]
    for key, field_name in (("settle", "settle"), ("recoveryTimeout", "recovery_timeout")):
        if key in spec:
            kw[field_name] = _seconds(doc, ("spec", key), spec[key])
    slos = []
    for metric, goal in (spec.get("slo") or {}).items():
        [(aggregate, value)] = goal.items()  # the schema allows exactly one
        path: FieldPath = ("spec", "slo", metric)
        threshold = _threshold(doc, (*path, aggregate), metric, value)
        slos.append(SloSpec(metric, aggregate, threshold, doc.at(path)))
    faults = []
    for i, fault in enumerate(spec["faults"]):
        # Defaults are filled in so the plan, the reports and the compact form all see the same params.
        params = {**_fault_defaults(fault["kind"]), **{k: v for k, v in fault.items() if k != "kind"}}
        faults.append(FaultSpec(fault["kind"], params, doc.at(("spec", "faults", i))))
    workload, found = _workload(doc, source)
    if found:
        raise SpecError(found)
    return Experiment(
        name=doc.data["metadata"]["name"], description=doc.data["metadata"].get("description", ""),
        faults=tuple(faults), duration=_seconds(doc, ("spec", "duration"), spec["duration"]),
        slos=tuple(slos),
        abort={m: _threshold(doc, ("spec", "abort", m), m, v) for m, v in (spec.get("abort") or {}).items()},
        workload=workload, source=source, raw=doc.data, **kw)


def _workload(doc: Document, source: Path | None) -> tuple[Workload | None, list[str]]:
    """`spec.workload` with every object of its manifests (read relative to the experiment's folder), and
    the problems, each with its file and line."""
    spec = doc.data["spec"].get("workload")
    if spec is None:
        return None, []
    where = doc.at(("spec", "workload", "manifests"))
    base = source.parent if source is not None else None
    objects: list[Mapping[str, Any]] = []
    problems: list[str] = []
    for i, name in enumerate(spec["manifests"]):
        path = (base / name) if base is not None and not Path(name).is_absolute() else Path(name)
        try:
            text = read_text(path)
        except SpecError as exc:
            problems += [f"{doc.at(('spec', 'workload', 'manifests', i))}: {p}" for p in exc.problems]
            continue
        docs, found = parse(text, str(path))
        problems += found
        for d in docs:
            found = object_problems(d.data, f"{path}:{d.line}")
            problems += found
            objects += [] if found else [d.data]
    timeout = _seconds(doc, ("spec", "workload", "readyTimeout"), spec.get("readyTimeout", "2m"))
    return Workload(tuple(spec["manifests"]), tuple(objects), timeout, bool(spec.get("keep", False)), where), problems


def _compact(doc: Document, source: Path | None) -> Experiment:
    """`kind: ControlPlaneChaos`: a hard kill of one component's leader (a random apiserver: it has none)."""
    spec: dict[str, Any] = doc.data["spec"]
    meta: dict[str, Any] = doc.data.get("metadata") or {}
    component = COMPACT_COMPONENTS[spec["target"]]
    params = {"component": component, "select": "random" if component == "kube-apiserver" else "leader",
              "signal": "KILL"}
    slos = []
    if "expectedRecovery" in spec:
        path: FieldPath = ("spec", "expectedRecovery")
        slos.append(SloSpec("recoveryTime", "max", _seconds(doc, path, spec["expectedRecovery"]), doc.at(path)))
    for metric, limit in (spec.get("monitoring") or {}).items():
        path = ("spec", "monitoring", metric)
        if isinstance(limit, str):
            limit = limit.removeprefix("must-not-exceed-")
        slos.append(SloSpec(metric, "max", _threshold(doc, path, metric, limit), doc.at(path)))
    return Experiment(
        name=meta.get("name") or Path(doc.file).stem, description=meta.get("description", ""),
        faults=(FaultSpec("kill-process", params, doc.at(("spec", "target"))),),
        duration=_seconds(doc, ("spec", "duration"), spec["duration"]), slos=tuple(slos),
        source=source, raw=doc.data)


def _inline_probe(doc: Document, i: int, probe: dict[str, Any]) -> dict[str, Any]:
    """A probe written inline in spec.probes, with its interval in seconds (as probe sets give them)."""
    out = dict(probe)
    if "interval" in out:
        out["interval"] = parse_duration(out["interval"], doc.at(("spec", "probes", i, "interval")))
    return out


def _probe_problems(doc: Document) -> list[str]:
    from chaoslab.spec import probesets  # probesets imports this module to parse its files

    problems = []
    singles = probesets.SINGLE_PROBES
    for i, name in enumerate(doc.data["spec"].get("probes") or []):
        if isinstance(name, dict):
            continue  # an inline probe: its kind and parameters are checked by the schema
        if name not in singles and probesets.find_probe_set(name) is None:
            known = probesets.known_probe_sets()
            problems.append(doc.problem(("spec", "probes", i), (
                f"{name!r} is neither a probe set (probes/NAME.yaml; known: {', '.join(known) or 'none'}) "
                f"nor a single probe ({', '.join(singles)}){_suggest(name, [*known, *singles])}")))
    return problems


#: The kinds of the default probe set, for an installed chaoslab without probes/ (as `chaoslab.plan.probes`).
DEFAULT_PROBE_KINDS = ("etcd", "lease", "apiserver", "canary", "records")


def _requirement_problems(doc: Document, exp: Experiment) -> list[str]:
    """SLOs, abort conditions and steady-state conditions that the experiment's probes cannot measure
    (`chaoslab.spec.requirements`): refused before anything runs, each naming the probe to add."""
    from chaoslab.spec import probesets, requirements  # probesets imports this module to parse its files

    kinds: list[dict[str, Any]] = []
    for name in exp.probes:
        if not isinstance(name, str):
            kinds.append(dict(name))
        elif name in probesets.SINGLE_PROBES:
            kinds.append({"kind": name})
        elif name == "control-plane" and probesets.find_probe_set(name) is None:
            kinds += [{"kind": k} for k in DEFAULT_PROBE_KINDS]
        else:
            try:
                kinds += probesets.load_probe_set(name)
            except SpecError:
                return []  # the missing or broken set is reported on its own
    # As the plan does: one sampler per kind, the last one named wins.
    by_kind = {str(p["kind"]): p for p in kinds}
    lease = by_kind.get("lease", {})
    names = {"lease": [str(n) for n in lease["names"]]} if "names" in lease else None
    full = doc.data.get("kind") == "Experiment"
    spec = doc.data.get("spec") or {}
    abort = {m: doc.at(("spec", "abort", m)) for m in exp.abort}
    written = spec.get("steadyState") or [] if full else []
    steady = {c: doc.at(("spec", "steadyState", written.index(c))) if c in written
              else f"{doc.at(('spec',))}.steadyState (the default, {', '.join(exp.steady_state)})"
              for c in exp.steady_state}
    needs = requirements.unmet_needs({s.metric: s.where for s in exp.slos}, abort, steady, set(by_kind),
                                     {f.kind for f in exp.faults}, names)
    if not needs:
        return []
    sets = {n: {str(p["kind"]) for p in probesets.load_probe_set(n)} for n in probesets.known_probe_sets()}
    return [n.message(sets) for n in needs]


def _target_problems(doc: Document) -> list[str]:
    """The target's own checks (an ssh target's hosts, addresses and files), where the schema cannot."""
    target = (doc.data.get("spec") or {}).get("target")
    if not isinstance(target, dict):
        return []
    try:
        found = checks.target_problems(target)
    except SpecError as exc:
        return [doc.problem(("spec", "target"), problem) for problem in exc.problems]
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError) as exc:
        return [doc.problem(("spec", "target"), f"the target is refused: {exc}")]
    return [doc.problem(("spec", "target", *path), message) for path, message in found]


def _fault_problems(doc: Document) -> list[str]:
    """Fault parameters that pass the schema one by one but contradict each other (e.g. `minority` without
    `shape: split`), each at its field."""
    out = []
    for i, fault in enumerate(doc.data["spec"]["faults"]):
        params = {**_fault_defaults(fault["kind"]), **{k: v for k, v in fault.items() if k != "kind"}}
        place: FieldPath = ("spec", "faults", i)
        try:
            found = checks.fault_problems(fault["kind"], params)
        except SpecError as exc:  # a plugin's check that raises instead of returning: still at this fault
            out += [doc.problem(place, problem) for problem in exc.problems]
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError) as exc:
            out.append(doc.problem(place, f"{fault['kind']}: the parameters are refused: {exc}"))
        else:
            out += [doc.problem((*place, *_split(name)), message) for name, message in found]
    return out


def _split(name: str) -> FieldPath:
    """A check's field name (`minority`, `hosts[1].port`) as a path."""
    return tuple(int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"[^.\[\]]+|\[\d+\]", name)) or (name,)


def experiment_from_document(doc: Document, source: Path | None) -> Experiment:
    """One full-form document (`kind: Experiment`) as an `Experiment`; `SpecError` with every problem. The
    Chaos Toolkit import builds such a document, with places mapped back to its own file."""
    found = check(doc) or _probe_problems(doc) + _fault_problems(doc) + _target_problems(doc)
    if found:
        raise SpecError(found)
    try:
        exp = _full(doc, source)
    except ValueError as exc:  # a duration beyond the limit, with its place
        raise SpecError([str(exc)]) from exc
    if found := _requirement_problems(doc, exp):
        raise SpecError(found)
    return exp


def is_chaostoolkit(data: Any) -> bool:
    """A Chaos Toolkit experiment (a `method`, no Kubernetes-style `kind`), not one of ours."""
    return isinstance(data, dict) and "method" in data and "kind" not in data and "apiVersion" not in data


def _load(text: str, file: str, source: Path | None, probe_sets_ok: bool,
          game_days: list[Any] | None = None) -> tuple[list[Experiment], list[str]]:
    """The experiments of one file and its problems. With `probe_sets_ok` (validating), probe sets are
    checked and game days loaded into `game_days`; otherwise both are problems (not experiments)."""
    docs, problems = parse(text, file)
    experiments = []
    game_days = game_days if game_days is not None else []
    for doc in docs:
        if is_chaostoolkit(doc.data):
            from chaoslab.spec.chaostoolkit import experiment_from_chaostoolkit  # only for such files

            try:
                experiments.append(experiment_from_chaostoolkit(doc, source))
            except SpecError as exc:
                problems += exc.problems
            continue
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if kind == "GameDay":
            from chaoslab.spec.gameday import _plain_dates

            _plain_dates(doc.data)
        found = check(doc)
        if not found and kind == "ProbeSet":
            if not probe_sets_ok:
                problems.append(doc.problem(("kind",), "'ProbeSet' is a probe set, not an experiment; "
                                                       "name it in an experiment's spec.probes"))
            continue
        if not found and kind == "GameDay":
            if not probe_sets_ok:
                problems.append(doc.problem(("kind",), "'GameDay' is a game day, not an experiment; run it "
                                                       "with `chaoslab gameday run FILE`"))
            else:
                from chaoslab.spec.gameday import game_day_from_document  # it imports this module

                try:
                    game_days.append(game_day_from_document(doc, source))
                except SpecError as exc:
                    problems += exc.problems
            continue
        if not found and kind == "Experiment":
            found = _probe_problems(doc) + _fault_problems(doc) + _target_problems(doc)
        if found:
            problems += found
            continue
        try:
            exp = (_compact if kind == "ControlPlaneChaos" else _full)(doc, source)
        except ValueError as exc:  # the schema's duration pattern should make this unreachable
            problems.append(str(exc))
            continue
        except SpecError as exc:  # spec.workload's manifests
            problems += exc.problems
            continue
        if found := _requirement_problems(doc, exp):
            problems += found
            continue
        experiments.append(exp)
    if not docs and not problems:
        problems.append(f"{file}:1: the file is empty; expected {_EXPECT}")
    return experiments, sorted(problems, key=lambda p: _line(p, file))


def _line(problem: str, file: str) -> int:
    # Problems of one file come from the parser, the schema and the model: show them in reading order.
    digits = re.match(r"\d+", problem.removeprefix(f"{file}:"))
    return int(digits.group()) if digits else 0


def load_text(text: str, source: str = "<string>") -> list[Experiment]:
    """The experiments in `text` (one per YAML document); raises SpecError with every problem found.
    `source` names the text in messages and, unless it is the default, becomes `Experiment.source`."""
    experiments, problems = _load(text, source, None if source == "<string>" else Path(source), False)
    if problems:
        raise SpecError(problems)
    return experiments


def _read(path: Path) -> str:
    return read_text(path)


def load(path: Path) -> list[Experiment]:
    """The experiments in one file; raises SpecError with every problem in it."""
    return load_text(_read(path), str(path))


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        # Hidden directories (.git, .venv) hold YAML that is not ours; `manifests/` holds the Kubernetes
        # objects experiments need (experiments/manifests: workloads to kubectl apply), not experiments.
        # Symbolic links to directories are not followed (a loop would never end); any other *.yaml entry
        # is kept, so that a FIFO or a dangling link is reported rather than skipped.
        found = []
        for top, dirs, names in os.walk(path):
            rel = Path(top).relative_to(path).parts
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "manifests")
            if any(part.startswith(".") for part in rel):
                continue
            found += [Path(top) / n for n in names if Path(n).suffix in (".yaml", ".yml") and not n.startswith(".")]
        return sorted(found)
    return [path]


def validate_paths(paths: list[Path]) -> tuple[list[Experiment], list[str]]:
    """Check files and directories (recursing into `*.yaml` / `*.yml`): the experiments of every file that
    loads cleanly, and all problems of all files. Probe sets (kind ProbeSet) and game days are checked too."""
    experiments, _, problems = validate_all(paths)
    return experiments, problems


def validate_all(paths: list[Path]) -> tuple[list[Experiment], list[Any], list[str]]:
    """`validate_paths`, with the game days (`chaoslab.spec.gameday.GameDay`) that load cleanly too."""
    experiments: list[Experiment] = []
    game_days: list[Any] = []
    problems: list[str] = []
    for path in paths:
        try:
            os.stat(path)
        except FileNotFoundError:
            problems.append(f"{path}: no such file or directory")
            continue
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        except ValueError as exc:
            problems.append(f"{path!r}: not a file name ({exc})")
            continue
        files = _files(path)
        if not files:
            problems.append(f"{path}: no *.yaml or *.yml files in this directory")
        for file in files:
            days: list[Any] = []
            try:
                found, wrong = _load(_read(file), str(file), file, True, days)
            except SpecError as exc:
                found, wrong = [], exc.problems
            # Like `load`: a file with any problem contributes no experiment.
            experiments += [] if wrong else found
            game_days += [] if wrong else days
            problems += wrong
    return experiments, game_days, problems
