"""Probe sets: reusable lists of probes in `probes/NAME.yaml` (kind ProbeSet) that experiments name in
`spec.probes`. Called by `chaoslab.ops.session` to learn which samplers to start, and by the loader to check
that the names an experiment uses exist.

    >>> load_probe_set("control-plane")                                     # doctest: +SKIP
    [{'kind': 'etcd', 'interval': 0.1}, {'kind': 'lease', 'names': [...]}, ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.spec.durations import parse_duration
from chaoslab.spec.loader import check, parse
from chaoslab.spec.reading import read_text

#: Probes that may be named on their own in `spec.probes` (the probe kinds of chaoslab.probes).
SINGLE_PROBES = ("etcd", "lease", "apiserver", "canary", "writes", "kube-sequence", "workloads", "admission",
                 "apiserver-metrics", "etcd-metrics", "records",
                 "node-lease")
DEFAULT_SEARCH: tuple[Path, ...] = (Path("probes"),)
# A source checkout keeps probes/ beside the package (chaoslab/spec/ → two levels up), so experiments
# find the shipped sets from any working directory.
REPO_PROBES = Path(__file__).resolve().parents[2] / "probes"


def _dirs(search: Sequence[Path]) -> list[Path]:
    return [d for d in dict.fromkeys([*search, REPO_PROBES]) if d.is_dir()]


def find_probe_set(name: str, search: Sequence[Path] = DEFAULT_SEARCH) -> Path | None:
    """The file of probe set `name`: `probes/NAME.yaml` (or .yml) under the cwd, then the repository."""
    for d in _dirs(search):
        for suffix in (".yaml", ".yml"):
            try:
                if (path := d / f"{name}{suffix}").is_file():
                    return path
            except (OSError, ValueError):  # a name no file can have (too long, a NUL)
                return None
    return None


def known_probe_sets(search: Sequence[Path] = DEFAULT_SEARCH) -> list[str]:
    return sorted({p.stem for d in _dirs(search) for p in [*d.glob("*.yaml"), *d.glob("*.yml")]})


def load_probe_set(name_or_path: str | Path,
                   search: Sequence[Path] = DEFAULT_SEARCH) -> list[dict[str, Any]]:
    """The probes of a set, each `{"kind": ..., "interval": seconds, "names": [...]}` with only the keys the
    file gives. A single probe's name gives just that probe. Raises SpecError if the set is missing or
    invalid."""
    name = str(name_or_path)
    if name in SINGLE_PROBES:
        return [{"kind": name}]
    is_path = isinstance(name_or_path, Path) or "/" in name or name.endswith((".yaml", ".yml"))
    path = Path(name) if is_path else find_probe_set(name, search)
    if path is None or not path.is_file():
        looked = name if is_path else " and ".join(str(d / f"{name}.yaml")
                                                   for d in dict.fromkeys([*search, REPO_PROBES]))
        known = ", ".join(known_probe_sets(search)) or "none"
        singles = ", ".join(SINGLE_PROBES)
        raise SpecError([(f"no probe set {name!r} (looked for {looked}); known sets: {known}; "
                          f"single probes: {singles}")])
    text = read_text(path)
    docs, problems = parse(text, str(path))
    for doc in docs:
        problems += check(doc)
    if not problems and [d.data.get("kind") for d in docs] != ["ProbeSet"]:
        problems.append(f"{path}:1: expected one document with kind: ProbeSet")
    if problems:
        raise SpecError(problems)
    out = []
    for i, probe in enumerate(docs[0].data["spec"]["probes"]):
        item = dict(probe)
        if "interval" in item:
            item["interval"] = parse_duration(item["interval"], docs[0].at(("spec", "probes", i, "interval")))
        out.append(item)
    return out
