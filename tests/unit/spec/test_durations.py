from __future__ import annotations

import pytest

from chaoslab.spec import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("45", 45.0), (45, 45.0), (0.25, 0.25),
    ("1.5s", 1.5), ("1h2m3s", 3723.0), ("0s", 0.0), ("2m", 120.0),
])
def test_durations_read_as_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text, "spec.duration") == seconds


@pytest.mark.parametrize("bad", ["30 sec", "s", "1m30", "-5s", "", "5d", "1.s", -1, float("nan"), True, None])
def test_a_bad_duration_names_the_place_and_the_allowed_forms(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^x\.yaml:3 spec\.duration: .* is not a duration; use a number of "
                                         r"seconds or a duration like 500ms, 30s, 1m30s, 2h"):
        parse_duration(bad, "x.yaml:3 spec.duration")  # type: ignore[arg-type]
