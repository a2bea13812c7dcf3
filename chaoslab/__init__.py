"""chaoslab: chaos engineering for Kubernetes control planes.

Experiments inject control-plane faults, probes sample the cluster into a timeline, SLO targets turn the
measurements into a verdict. `chaoslab.lab` runs a real HA control plane on one machine to break.
"""

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

__all__ = [
    "ChaoslabError",
    "InjectionError",
    "InstallError",
    "LabError",
    "RevertError",
    "SpecError",
    "TargetError",
    "__version__",
]
