"""When a step is due: pure functions of data and a clock (no database), so tests drive days without sleeping.

A step is due `delay` after the previous send, moved forward into the campaign's send window in the lead's
timezone (DST-correct through zoneinfo), and spread across the window's first hour by a per-lead offset so a
campaign does not fire all its leads at 09:00:00.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SPREAD = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    zone: ZoneInfo
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    @classmethod
    def of(cls, zone: str, days: Sequence[str], start: str, end: str) -> Window:
        return _window(zone, tuple(days), start, end)

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """The window's opening and closing instants (UTC) on a local calendar day."""
        opens = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
        closes = datetime.combine(day, self.end, tzinfo=self.zone).astimezone(UTC)
        return opens, closes

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        if local.weekday() not in self.days:
            return False
        opens, closes = self.bounds(local.date())
        return opens <= moment < closes


@lru_cache(maxsize=4096)
def _window(zone: str, days: tuple[str, ...], start: str, end: str) -> Window:
    """Windows are immutable and few (a campaign's, per time zone of its leads); the claim asks for one per
    email."""
    return Window(
        ZoneInfo(zone),
        frozenset(DAY_NAMES.index(d) for d in days),
        time.fromisoformat(start),
        time.fromisoformat(end),
    )


def spread_offset(key: str, window: Window, day: date) -> timedelta:
    """A stable per-lead offset into the window's first hour (or its first half, for a short window)."""
    return _offset(key, _spread_span(window, day))


def _spread_span(window: Window, day: date) -> timedelta:
    opens, closes = window.bounds(day)
    return min(MAX_SPREAD, (closes - opens) / 2)


def _offset(key: str, span: timedelta) -> timedelta:
    if span <= timedelta(0):
        return timedelta(0)
    fraction = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") / 2**32
    return timedelta(seconds=int(span.total_seconds() * fraction))


def next_open(moment: datetime, window: Window, spread_key: str | None = None) -> datetime:
    """The earliest instant at or after `moment` inside the window; when it has to wait for an opening, the
    opening plus the lead's spread offset."""
    if not window.days:
        raise ValueError("a send window needs at least one day")
    local_day = moment.astimezone(window.zone).date()
    for ahead in range(8):
        day = local_day + timedelta(days=ahead)
        if day.weekday() not in window.days:
            continue
        opens, closes = window.bounds(day)
        if moment < opens:
            offset = spread_offset(spread_key, window, day) if spread_key else timedelta(0)
            return opens + offset
        if moment < closes:
            return moment
    raise AssertionError("unreachable: a window with a day opens within a week")


def due_at(previous: datetime, delay: timedelta, window: Window, spread_key: str) -> datetime:
    """When the next step is due: `delay` after the previous send, moved into the window."""
    return next_open(previous + delay, window, spread_key)


def due_for_many(
    previous: datetime, delay: timedelta, window_of, leads: Sequence[tuple[str, str | None]]
) -> dict[str, datetime]:
    """`due_at` for many leads at once (bulk enrolment): the window's next opening is worked out once per
    timezone, then each lead gets its own spread offset — the same answers as `due_at`, lead by lead."""
    moment = previous + delay
    # Per zone: the opening, and the spread span when the lead has to wait for it (None: the window is open
    # now).
    openings: dict[str | None, tuple[datetime, timedelta | None]] = {}
    found: dict[str, datetime] = {}
    for key, timezone in leads:
        if timezone not in openings:
            window = window_of(timezone)
            opening = next_open(moment, window)
            waits = opening != moment
            openings[timezone] = (
                opening,
                _spread_span(window, opening.astimezone(window.zone).date()) if waits else None,
            )
        opening, span = openings[timezone]
        found[key] = opening if span is None else opening + _offset(key, span)
    return found
