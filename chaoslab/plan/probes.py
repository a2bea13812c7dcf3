"""Which probes an experiment runs: its `spec.probes` (probe sets and single probes) expanded into one
sampler per kind, with the workloads probe watching the namespaces the faults disrupt. Part of the plan."""

from __future__ import annotations

from typing import Any

from chaoslab.spec.model import Experiment
from chaoslab.spec.probesets import SINGLE_PROBES, find_probe_set, load_probe_set

#: The default probe set, for an installed chaoslab run outside a checkout that has probes/.
CONTROL_PLANE: list[dict[str, Any]] = [{"kind": "etcd", "interval": 0.1}, {"kind": "lease"}, {"kind": "apiserver", "interval": 0.25},
                 {"kind": "canary", "interval": 2.0}, {"kind": "records"}]


def probes_for(experiment: Experiment) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in experiment.probes:
        if not isinstance(name, str):
            out.append(dict(name))
        elif name in SINGLE_PROBES:
            out.append({"kind": name})
        elif name == "control-plane" and find_probe_set(name) is None:
            out.extend(CONTROL_PLANE)
        else:
            out.extend(load_probe_set(name))
    # One sampler per kind: a set and a single probe naming the same kind must not double the load.
    probes = list({p["kind"]: p for p in out}.values())
    for p in probes:
        if p["kind"] == "workloads" and not p.get("namespaces"):
            p["namespaces"] = fault_namespaces(experiment)
    return probes


def fault_namespaces(experiment: Experiment) -> list[str]:
    """The namespaces the experiment's faults may disrupt (`namespaces`/`namespace` params; `*` for all),
    which the workloads probe watches unless its probe set names others; `default` if none is named."""
    names: list[str] = []
    for f in experiment.faults:
        value = f.params.get("namespaces", f.params.get("namespace"))
        names += [value] if isinstance(value, str) else list(value or [])
    return list(dict.fromkeys(str(n) for n in names)) or ["default"]
