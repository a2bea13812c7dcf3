"""An `Experiment` as JSON and back: the run session writes it to `RUN_DIR/experiment.json`, and
`chaoslab report` reads it to judge the saved timelines again. Lossless for everything the verdict and
reports read; `raw` (the document as loaded) is kept with anything JSON cannot hold turned into text.

    >>> experiment_from_json(experiment_to_json(exp)) == exp                     # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from chaoslab.spec.model import Aggregate, BlastRadius, Experiment, FaultSpec, SloSpec, TargetSpec
from chaoslab.spec.workload import Workload

FORMAT = "chaoslab.io/experiment-json/v1"


def _plain(value: Any) -> Any:
    """JSON-safe: mappings and sequences recursively, scalars as they are, anything else (a YAML date) as text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def experiment_to_json(experiment: Experiment) -> dict[str, Any]:
    e = experiment
    return {
        "format": FORMAT, "name": e.name, "description": e.description,
        "faults": [{"kind": f.kind, "params": _plain(f.params), "where": f.where} for f in e.faults],
        "duration": e.duration,
        "target": None if e.target is None else {"kind": e.target.kind, "params": _plain(e.target.params)},
        "steadyState": list(e.steady_state), "probes": list(e.probes),
        "slos": [{"metric": s.metric, "aggregate": s.aggregate, "threshold": s.threshold, "where": s.where}
                 for s in e.slos],
        "abort": dict(e.abort), "blastRadius": asdict(e.blast_radius), "runs": e.runs, "settle": e.settle, "recoveryTimeout": e.recovery_timeout,
        "source": None if e.source is None else str(e.source), "raw": _plain(e.raw),
        **({"workload": _plain(e.workload.to_json())} if e.workload is not None else {}),
    }


def experiment_from_json(data: Mapping[str, Any]) -> Experiment:
    if data.get("format") != FORMAT:
        raise ValueError(f"not a chaoslab experiment.json (format {data.get('format')!r}, expected {FORMAT})")
    target = data.get("target")
    return Experiment(
        name=data["name"], description=data.get("description", ""),
        faults=tuple(FaultSpec(f["kind"], dict(f.get("params", {})), f.get("where", "")) for f in data["faults"]),
        duration=float(data["duration"]),
        target=None if target is None else TargetSpec(target["kind"], dict(target.get("params", {}))),
        steady_state=tuple(data["steadyState"]), probes=tuple(data["probes"]),
        slos=tuple(SloSpec(s["metric"], cast(Aggregate, s["aggregate"]), float(s["threshold"]), s.get("where", ""))
                   for s in data["slos"]),
        abort={k: float(v) for k, v in data.get("abort", {}).items()}, runs=int(data["runs"]),
        blast_radius=BlastRadius(**data.get("blastRadius", {})),
        settle=float(data["settle"]), recovery_timeout=float(data["recoveryTimeout"]),
        source=None if data.get("source") is None else Path(data["source"]), raw=dict(data.get("raw", {})),
        workload=Workload.from_json(data["workload"]) if data.get("workload") else None,
    )
