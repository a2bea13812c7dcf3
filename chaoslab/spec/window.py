"""Time windows: when a game day may run (week days, hours, a time zone, freeze dates). Pure; the game day
loader builds a `Window`, `chaoslab gameday run` asks `refusal` before touching the cluster.

    >>> w = Window(days=("Tue",), start=dt.time(10), end=dt.time(16), time_zone="Europe/Berlin")
    >>> refusal(w, dt.datetime(2026, 5, 19, 11, 0, tzinfo=ZoneInfo("Europe/Berlin"))) is None
    True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Window:
    days: tuple[str, ...] = DAYS
    """Week days (Mon … Sun) it may start on."""
    start: dt.time | None = None
    """Start of the allowed hours (inclusive), local time; None: any time of day."""
    end: dt.time | None = None
    """End of the allowed hours (exclusive), local time; `time.max` for 24:00."""
    time_zone: str = "UTC"
    freeze: tuple[tuple[dt.date, dt.date], ...] = ()
    """Date ranges (both ends inclusive, local dates) on which it must not run."""
    where: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def describe(self) -> str:
        """`Tue, Wed 10:00-16:00 Europe/Berlin, frozen 2026-12-20..2027-01-06`."""
        days = "every day" if self.days == DAYS else ", ".join(self.days)
        hours = f" {_hm(self.start)}-{_hm(self.end)}" if self.start is not None and self.end is not None else ""
        frozen = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in self.freeze)
        return f"{days}{hours} {self.time_zone}" + (f", frozen {frozen}" if frozen else "")


def _hm(t: dt.time | None) -> str:
    return "24:00" if t == dt.time.max else t.strftime("%H:%M") if t else ""


def parse_hours(text: str) -> tuple[dt.time, dt.time]:
    """`10:00-16:00` → (10:00, 16:00); `24:00` is the end of the day. ValueError unless start < end."""
    a, b = text.split("-")
    start = dt.time.fromisoformat(a)
    end = dt.time.max if b == "24:00" else dt.time.fromisoformat(b)
    if end <= start:
        raise ValueError(f"{text!r}: the end must be after the start on the same day (windows across "
                         "midnight are not supported: use 22:00-24:00 and 00:00-02:00 as two game days)")
    return start, end


def parse_freeze(text: str) -> tuple[dt.date, dt.date]:
    """`2026-12-24` or `2026-12-20..2027-01-06` → (first, last). ValueError for a bad date or order."""
    a, _, b = text.partition("..")
    first, last = dt.date.fromisoformat(a), dt.date.fromisoformat(b or a)
    if last < first:
        raise ValueError(f"{text!r}: the range ends before it starts")
    return first, last


def local(window: Window, now: dt.datetime) -> dt.datetime:
    """`now` in the window's time zone (a naive `now` is taken to be in that zone already)."""
    return now.replace(tzinfo=window.zone) if now.tzinfo is None else now.astimezone(window.zone)


def _open_on(window: Window, day: dt.date) -> bool:
    return DAYS[day.weekday()] in window.days and not any(a <= day <= b for a, b in window.freeze)


def refusal(window: Window, now: dt.datetime) -> str | None:
    """Why the window is closed at `now` (one sentence with the next opening), or None when it is open."""
    t = local(window, now)
    reason = None
    frozen = next(((a, b) for a, b in window.freeze if a <= t.date() <= b), None)
    if frozen:
        a, b = frozen
        reason = f"{t.date()} is in the freeze {a}" + (f"..{b}" if b != a else "")
    elif DAYS[t.weekday()] not in window.days:
        reason = f"{DAYS[t.weekday()]} is not one of {', '.join(window.days)}"
    elif window.start is not None and window.end is not None and not window.start <= t.time() < window.end:
        reason = f"{t:%H:%M} is outside {_hm(window.start)}-{_hm(window.end)}"
    if reason is None:
        return None
    nxt = next_opening(window, t)
    when = f"; it opens next {nxt:%a %Y-%m-%d %H:%M} {window.time_zone}" if nxt else "; it never opens again"
    return f"outside the game day's window ({window.describe()}): now {t:%a %Y-%m-%d %H:%M} {window.time_zone}, " \
           f"{reason}{when}"


def next_opening(window: Window, now: dt.datetime, horizon_days: int = 800) -> dt.datetime | None:
    """The first moment after `now` at which the window is open (None within `horizon_days`)."""
    t = local(window, now)
    for i in range(horizon_days):
        day = t.date() + dt.timedelta(days=i)
        if not _open_on(window, day):
            continue
        start = dt.datetime.combine(day, window.start or dt.time(0), tzinfo=window.zone)
        if start > t:
            return start
        if i == 0 and (window.end is None or t.time() < window.end):
            return t
    return None


def parse_now(text: str) -> dt.datetime:
    """`--now 2026-05-19T11:00` (the window's local time) or with an offset (`…+02:00`, `…Z`)."""
    return dt.datetime.fromisoformat(text)
