"""The CI gate: which SLOs decide a run's outcome and which SLOs are close enough to their limit to warn.

A `Verdict` says what was measured and whether every SLO was met; a `Policy` (from `chaoslab run
--fail-on … --warn-margin …`, saved as `gate.json` in the run directory so `chaoslab report` rebuilds the
same reports) turns it into a `Gate`: each SLO result is `pass`, `warn` (met, but within the margin of its
limit), `fail` (violated and gating) or `ignored` (violated, but not named by `--fail-on`: reported,
not gating). An SLO whose bracket straddles its limit (`SloResult.outcome == "inconclusive"`: the samples
cannot tell) is `warn` by default and `fail` with `--inconclusive fail` (`ignored` when not gating).
Pure; read by the CLI (exit code), the reports and the Prometheus export.

    >>> gate = evaluate(verdict, Policy(fail_on=frozenset({"recoveryTime"}), warn_margin=0.1))  # doctest: +SKIP
    >>> gate.passed, [(s.result.metric, s.status) for s in gate.slos]                          # doctest: +SKIP
    (True, [('recoveryTime', 'warn'), ('etcdLeaderElections', 'ignored')])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chaoslab.errors import SpecError
from chaoslab.judge.verdict import SloResult, Verdict, format_value
from chaoslab.spec.model import METRICS

SCHEMA = "chaoslab.io/gate/v1"

Status = Literal["pass", "warn", "fail", "ignored"]
Inconclusive = Literal["warn", "fail"]


@dataclass(frozen=True)
class Policy:
    fail_on: frozenset[str] | None = None
    """SLO metrics that gate (`--fail-on recoveryTime,lostWrites`); None: every SLO gates (`--fail-on all`)."""
    warn_margin: float = 0.0
    """Fraction of the limit (0.1 = 10 %): a met SLO whose measured value is within it warns. 0: no warnings."""
    inconclusive: Inconclusive = "warn"
    """What a gating SLO whose bracket straddles its limit does (`--inconclusive`): `warn` (default: reported
    as a warning, exit 0) or `fail` (counts as a violation, exit 1)."""

    def gates(self, metric: str) -> bool:
        return self.fail_on is None or metric in self.fail_on

    def describe(self) -> str:
        """`--fail-on all`, `--fail-on lostWrites,recoveryTime --warn-margin 10%` …"""
        text = "--fail-on " + (",".join(sorted(self.fail_on)) if self.fail_on is not None else "all")
        text += f" --warn-margin {self.warn_margin:.0%}" if self.warn_margin else ""
        return text + (" --inconclusive fail" if self.inconclusive == "fail" else "")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": SCHEMA, "warnMargin": self.warn_margin,
                               "failOn": sorted(self.fail_on) if self.fail_on is not None else "all"}
        if self.inconclusive != "warn":
            out["inconclusive"] = self.inconclusive  # absent: the default, as in gate.json files before it
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a chaoslab gate policy (schema {data.get('schema')!r}, expected {SCHEMA})")
        fail_on = data.get("failOn", "all")
        inconclusive = data.get("inconclusive", "warn")
        if inconclusive not in ("warn", "fail"):
            raise ValueError(f"inconclusive: {inconclusive!r} is not warn or fail")
        return cls(None if fail_on == "all" else frozenset(str(m) for m in fail_on),
                   float(data.get("warnMargin", 0.0)), inconclusive)


def parse_fail_on(text: str) -> frozenset[str] | None:
    """`all` → None; `recoveryTime,lostWrites` → those metrics. Unknown names are a SpecError (exit 2)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise SpecError(["--fail-on: empty; give `all` or SLO metric names separated by commas"])
    if names == ["all"]:
        return None
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise SpecError([f"--fail-on: {n!r} is not an SLO metric; known: {', '.join(METRICS)}" for n in unknown])
    return frozenset(names)


def parse_margin(text: str) -> float:
    """`10%` or `0.1` → 0.1; a SpecError unless 0 ≤ margin < 1."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", text)
    if not m:
        raise SpecError([f"--warn-margin: {text!r} is not a percentage (like 10%) or a fraction (like 0.1)"])
    value = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 <= value < 1:
        raise SpecError([f"--warn-margin: {text!r} must be at least 0 and below 100%"])
    return value


def parse_inconclusive(text: str) -> Inconclusive:
    """`warn` or `fail` (`--inconclusive`); anything else is a SpecError (exit 2)."""
    if text == "warn":
        return "warn"
    if text == "fail":
        return "fail"
    raise SpecError([f"--inconclusive: {text!r} is not warn or fail"])


def check_names(policy: Policy, slo_metrics: Iterable[str]) -> None:
    """A SpecError when `--fail-on` names a metric that no experiment in the file has as an SLO: such a gate
    could never fail, which is almost certainly a typo or the wrong file."""
    present = set(slo_metrics)
    missing = sorted((policy.fail_on or frozenset()) - present)
    if missing:
        raise SpecError([f"--fail-on: {m!r} is not an SLO of this experiment file (its SLOs: "
                         f"{', '.join(sorted(present)) or 'none'})" for m in missing])


def near_limit(result: SloResult, margin: float) -> bool:
    """A met SLO whose measured value lies within `margin` × limit of the limit (a limit of 0 never warns:
    there is no "close to zero" for a count that must stay zero)."""
    if not result.passed or result.measured is None or margin <= 0 or result.threshold == 0:
        return False
    limit = abs(result.threshold)
    if result.aggregate == "min":
        return result.measured < result.threshold + margin * limit
    return result.measured > result.threshold - margin * limit


@dataclass(frozen=True)
class GatedSlo:
    result: SloResult
    status: Status
    gating: bool
    note: str = ""
    """Why it warns or is ignored, for reports: `within 10% of its limit (27.50 s of max 30 s)`."""

    @property
    def outcome(self) -> str:
        """The SLO's own outcome: `pass`, `fail` or `inconclusive` (its status is what the policy made of it)."""
        return self.result.outcome or ("pass" if self.result.passed else "fail")

    @property
    def label(self) -> str:
        """For tables: `pass`, `pass, warning`, `FAIL`, `FAIL, not gating`, `inconclusive` …"""
        if self.outcome == "inconclusive":
            return {"fail": "INCONCLUSIVE, gating", "ignored": "inconclusive, not gating"}.get(
                self.status, "inconclusive")
        return {"pass": "pass", "warn": "pass, warning", "fail": "FAIL", "ignored": "FAIL, not gating"}[self.status]


@dataclass(frozen=True)
class Gate:
    experiment: str
    policy: Policy
    slos: list[GatedSlo]

    @property
    def passed(self) -> bool:
        """No gating SLO failed (the exit code's 0 versus 1)."""
        return all(s.status != "fail" for s in self.slos)

    @property
    def warnings(self) -> list[GatedSlo]:
        return [s for s in self.slos if s.status in ("warn", "ignored")]

    @property
    def inconclusive(self) -> list[GatedSlo]:
        """SLOs the samples could not decide (whatever the policy made of them)."""
        return [s for s in self.slos if s.outcome == "inconclusive"]


def evaluate(verdict: Verdict, policy: Policy) -> Gate:
    out = []
    for r in verdict.slos:
        gating = policy.gates(r.metric)
        status: Status
        if r.outcome == "inconclusive":
            undecided = (f"inconclusive: the true value lies between {format_value(r.low, r.unit)} and "
                         f"{format_value(r.high, r.unit)}, across its limit {r.target}")
            if not gating:
                status, note = "ignored", f"{undecided}; not gating ({policy.describe()})"
            elif policy.inconclusive == "fail":
                status, note = "fail", f"{undecided}; counted as a failure (--inconclusive fail)"
            else:
                status, note = "warn", undecided
        elif not r.passed:
            status = "fail" if gating else "ignored"
            note = "" if gating else f"violated but not gating ({policy.describe()})"
        elif near_limit(r, policy.warn_margin):
            status = "warn"
            note = (f"within {policy.warn_margin:.0%} of its limit ({format_value(r.measured, r.unit)} "
                    f"of {r.target})")
        else:
            status, note = "pass", ""
        out.append(GatedSlo(r, status, gating, note))
    return Gate(verdict.experiment, policy, out)
