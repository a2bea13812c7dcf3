"""chaoslab: chaos engineering for Kubernetes control planes.

Experiments inject control-plane faults, probes sample the cluster into a timeline, SLO targets turn the
measurements into a verdict. `chaoslab.lab` runs a real HA control plane on one machine to break.
`discover` is for Chaos Toolkit (`chaos discover chaoslab`); see `chaoslab.chaostoolkit`.
"""

from typing import Any

from chaoslab.errors import (
    ChaoslabError,
    InjectionError,
    InstallError,
    LabError,
    RevertError,
    SpecError,
    TargetError,
)

__version__ = "0.1.0"


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Chaos Toolkit discovery: chaoslab's faults as actions and its probes as probes, with their arguments.
    chaoslib looks for `discover` in the top-level package; the work is in `chaoslab.chaostoolkit`."""
    from chaoslab.chaostoolkit import discover as discover_chaoslab

    return discover_chaoslab(discover_system)


__all__ = [
    "ChaoslabError",
    "InjectionError",
    "InstallError",
    "LabError",
    "RevertError",
    "SpecError",
    "TargetError",
    "__version__",
    "discover",
]
