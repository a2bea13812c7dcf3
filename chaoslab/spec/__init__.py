"""Experiments as written (YAML, `chaoslab.io/v1alpha1 Experiment` or compact `ControlPlaneChaos`) → the
frozen model in `chaoslab.spec.model`. Pure: reads files, touches no cluster. Used by the CLI (`run`,
`validate`) and the run session.

    >>> experiments, problems = validate_paths([Path("experiments")])       # doctest: +SKIP
"""

from __future__ import annotations

from chaoslab.spec.durations import parse_duration
from chaoslab.spec.loader import load, load_text, validate_paths

__all__ = ["load", "load_text", "parse_duration", "validate_paths"]
