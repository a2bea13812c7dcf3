"""chaoslab as a Chaos Toolkit extension, and the bridge between the two experiment formats.

- `chaoslab.chaostoolkit.actions`: chaoslab's faults as actions (`inject_fault`, one per built-in kind) and
  the rollback that reverts them (`revert_fault`);
- `chaoslab.chaostoolkit.probes`: chaoslab's view of the control plane as probes (`steady_state`,
  `etcd_leader`, `lease_holder`, `apiserver_ready`);
- `chaoslab.chaostoolkit.control`: records a chaoslab timeline during `chaos run` and puts chaoslab's SLO
  verdict into the journal;
- `chaoslab.spec.chaostoolkit`: `chaoslab export --to chaostoolkit`, and the import that lets
  `chaoslab run` take a Chaos Toolkit experiment.

`chaos discover chaoslab` calls `chaoslab.discover`, which is `discover` here. docs/chaostoolkit.md has a
worked example of both directions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["discover"]

#: What chaoslib's discovery calls the system an extension targets.
DISCOVERY_TARGET = "kubernetes-control-plane"


def discover(discover_system: bool = True) -> dict[str, Any]:
    """The Chaos Toolkit discovery of chaoslab: every action and probe with its arguments (from their
    signatures, by chaoslib's own helpers) and, with `discover_system`, the components of the running lab."""
    from chaoslib.discovery import discover_actions, discover_probes, initialize_discovery_result

    from chaoslab import __version__

    discovery: dict[str, Any] = initialize_discovery_result("chaoslab", __version__, DISCOVERY_TARGET)
    discovery["activities"].extend(discover_actions("chaoslab.chaostoolkit.actions"))
    discovery["activities"].extend(discover_probes("chaoslab.chaostoolkit.probes"))
    if discover_system:
        discovery["system"] = _system()
    return discovery


def _system() -> dict[str, Any]:
    """The default target (`lab`), if it runs: which hosts run which component."""
    from chaoslab.errors import ChaoslabError
    from chaoslab.targets import COMPONENTS, resolve_target

    try:
        target = resolve_target("lab")
        return {"target": target.name, "components": {c: target.hosts(c) for c in COMPONENTS}}
    except ChaoslabError as exc:
        return {"target": None, "note": str(exc)}
