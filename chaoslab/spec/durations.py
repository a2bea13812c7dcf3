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
MAX_SECONDS = 30 * 86400.0
"""Longest duration taken (30 days; the schema's `maximum` for durations written as numbers)."""


def parse_duration(value: str | float, where: str) -> float:
    """Seconds in `value`; raises ValueError naming `where` (a place like `FILE:LINE spec.duration`)."""
    prefix = f"{where}: " if where else ""
    # bool is an int to Python, but `duration: yes` is a mistake, not one second.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        # ValueError, not TypeError: callers turn it into a problem for the person who wrote the value.
        raise ValueError(f"{prefix}{value!r} is not a duration; use {ALLOWED}")  # noqa: TRY004
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            seconds = math.inf
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"{prefix}{_short(value)} is not a duration; use {ALLOWED} (not negative)")
    elif not re.fullmatch(PATTERN, value):
        raise ValueError(f"{prefix}{_short(value)} is not a duration; use {ALLOWED}")
    elif re.fullmatch(_NUMBER, value):
        seconds = float(value)  # a long digit string is inf, not an error: caught below
    else:
        seconds = sum(float(n) * UNITS[unit] for n, unit in re.findall(_PART, value))
    if not seconds <= MAX_SECONDS:
        raise ValueError(f"{prefix}{_short(value)} is too long; a duration is at most 30 days ({MAX_SECONDS:g} s)")
    return seconds


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or value < 10**60 else f"{str(value)[:20]}... ({len(str(value))} digits)"
    return text if len(text) <= 70 else text[:67] + "..."
