import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from chaoslab.spec.window import Window, next_opening, parse_freeze, parse_hours, parse_now, refusal

BERLIN = ZoneInfo("Europe/Berlin")
WEEKLY = Window(days=("Tue", "Wed"), start=dt.time(10), end=dt.time(16), time_zone="Europe/Berlin",
                freeze=(parse_freeze("2026-12-20..2027-01-06"),))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def test_inside_the_days_and_hours_the_window_is_open() -> None:
    assert refusal(WEEKLY, at("2026-05-19T10:00")) is None  # Tuesday, start inclusive
    assert refusal(WEEKLY, at("2026-05-20T15:59")) is None  # Wednesday


def test_the_end_of_the_hours_is_exclusive_and_names_the_next_opening() -> None:
    reason = refusal(WEEKLY, at("2026-05-19T16:00"))
    assert reason is not None and "16:00 is outside 10:00-16:00" in reason
    assert "opens next Wed 2026-05-20 10:00 Europe/Berlin" in reason


def test_another_day_is_refused() -> None:
    reason = refusal(WEEKLY, at("2026-05-16T11:00"))
    assert reason is not None and "Sat is not one of Tue, Wed" in reason
    assert "opens next Tue 2026-05-19 10:00" in reason


def test_a_freeze_wins_over_day_and_hours_and_the_next_opening_skips_it() -> None:
    reason = refusal(WEEKLY, at("2026-12-22T11:00"))  # a Tuesday inside the freeze
    assert reason is not None and "2026-12-22 is in the freeze 2026-12-20..2027-01-06" in reason
    assert "opens next Tue 2027-01-12 10:00" in reason


def test_times_with_an_offset_are_converted_to_the_window_zone() -> None:
    # 08:30 UTC is 10:30 in Berlin in May (CEST).
    assert refusal(WEEKLY, parse_now("2026-05-19T08:30Z")) is None
    assert refusal(WEEKLY, parse_now("2026-05-19T07:30+00:00")) is not None


def test_before_the_hours_the_next_opening_is_today() -> None:
    assert next_opening(WEEKLY, at("2026-05-19T08:00")) == at("2026-05-19T10:00")


def test_hours_and_freeze_ranges_are_checked() -> None:
    assert parse_hours("00:00-24:00") == (dt.time(0), dt.time.max)
    with pytest.raises(ValueError, match="after the start"):
        parse_hours("16:00-10:00")
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_freeze("2027-01-06..2026-12-20")
    assert parse_freeze("2026-12-24") == (dt.date(2026, 12, 24), dt.date(2026, 12, 24))


def test_a_window_without_hours_is_open_all_day_on_its_days() -> None:
    w = Window(days=("Sun",))
    assert refusal(w, dt.datetime(2026, 5, 17, 23, 59, tzinfo=dt.UTC)) is None
    assert "Mon is not one of Sun" in (refusal(w, dt.datetime(2026, 5, 18, 0, 1, tzinfo=dt.UTC)) or "")
