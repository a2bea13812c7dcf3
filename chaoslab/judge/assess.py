"""Timelines → measurements → verdict → gate, computed once per experiment; everything after (the terminal,
reports, JUnit, CI publishing, a game day's record) reads this one `Assessment`.

    >>> a = assess(experiment, timelines, renewal_window=5.0, policy=Policy())   # doctest: +SKIP
    >>> a.gate.passed                                                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chaoslab.judge.gate import Gate, Policy, evaluate
from chaoslab.judge.measure import Measurements, measure
from chaoslab.judge.verdict import Verdict, judge
from chaoslab.spec.model import Experiment
from chaoslab.timeline import Timeline


@dataclass(frozen=True)
class Assessment:
    measurements: list[Measurements]
    verdict: Verdict
    gate: Gate


def assess(experiment: Experiment, timelines: Sequence[Timeline], renewal_window: float,
           policy: Policy) -> Assessment:
    measurements = [measure(tl, experiment.steady_state, experiment.settle, renewal_window) for tl in timelines]
    verdict = judge(experiment, measurements)
    return Assessment(measurements, verdict, evaluate(verdict, policy))
