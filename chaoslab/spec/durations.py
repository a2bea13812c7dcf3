"""Durations as experiments write them (`30s`, `1m30s`, `500ms`, `2h`, or a bare number of seconds) → float
seconds. The loader calls `parse_duration`; `PATTERN` is the same grammar as the `duration` pattern in
experiment.schema.json, so editors and the loader agree (a unit test keeps the two equal).

    >>> parse_duration("1m30s", "spec.duration")
    90.0
"""

from __future__ import annotations

import math
import re

UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = r"\d+(?:\.\d+)?"
# `ms` before `m`: the alternation is tried in order, and `500ms` must not read as 500 minutes + `s`.
_PART = rf"({_NUMBER})(h|ms|m|s)"
PATTERN = rf"^(?:{_NUMBER}|(?:{_NUMBER}(?:h|ms|m|s))+)$"
ALLOWED = "a number of seconds or a duration like 500ms, 30s, 1m30s, 2h"


def parse_duration(value: str | float, where: str) -> float:
    """Seconds in `value`; raises ValueError naming `where` (a place like `FILE:LINE spec.duration`)."""
    prefix = f"{where}: " if where else ""
    # bool is an int to Python, but `duration: yes` is a mistake, not one second.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        # ValueError, not TypeError: callers turn it into a problem for the person who wrote the value.
        raise ValueError(f"{prefix}{value!r} is not a duration; use {ALLOWED}")  # noqa: TRY004
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{prefix}{value!r} is not a duration; use {ALLOWED} (not negative)")
        return float(value)
    if not re.fullmatch(PATTERN, value):
        raise ValueError(f"{prefix}{value!r} is not a duration; use {ALLOWED}")
    if re.fullmatch(_NUMBER, value):
        return float(value)
    return sum(float(n) * UNITS[unit] for n, unit in re.findall(_PART, value))
