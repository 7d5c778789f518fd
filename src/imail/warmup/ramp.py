"""How many warmup emails an inbox starts on a day, and when each is due: pure functions of settings and a
clock.

The ramp: on its first day an inbox sends `start_volume`, and `daily_increment` more on each later ramp day,
up to `ceiling` (and never more than the inbox's daily limit). With `weekdays_only`, Saturdays and Sundays
send nothing and do not count as ramp days. A day's sends are spread evenly over the warmup window (UTC), each
inbox shifted by its own stable fraction of a slot, so the pool does not fire in lockstep; by the window's end
every slot has passed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass(frozen=True)
class Ramp:
    start_volume: int
    daily_increment: int
    ceiling: int
    weekdays_only: bool = False


def _weekdays_between(first: date, last: date) -> int:
    """Weekdays in [first, last)."""
    days = (last - first).days
    if days <= 0:
        return 0
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(rest):
        if (first + timedelta(days=weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def ramp_days_before(ramp: Ramp, started: date, day: date) -> int:
    """Ramp days from `started` up to (not including) `day`."""
    if day <= started:
        return 0
    return _weekdays_between(started, day) if ramp.weekdays_only else (day - started).days


def target(ramp: Ramp, started: date, day: date, daily_limit: int) -> int:
    """Warmup emails to start on `day` (0 before the start, and on weekends with `weekdays_only`)."""
    if day < started or (ramp.weekdays_only and day.weekday() >= 5):
        return 0
    volume = ramp.start_volume + ramp.daily_increment * ramp_days_before(ramp, started, day)
    return max(0, min(ramp.ceiling, volume, daily_limit))


@dataclass(frozen=True)
class Window:
    start: time
    end: time | None  # None: midnight at the end of the day

    @classmethod
    def parse(cls, value: str) -> Window:
        opens, _, closes = value.partition("-")
        closes = closes.strip()
        return cls(
            time.fromisoformat(opens.strip()), None if closes == "24:00" else time.fromisoformat(closes)
        )

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        opens = datetime.combine(day, self.start, tzinfo=UTC)
        closes = (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
            if self.end is None
            else datetime.combine(day, self.end, tzinfo=UTC)
        )
        return opens, closes


def _shift(key: str) -> float:
    """A stable fraction in [0, 1) per inbox."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") / 2**32


def slot_time(window: Window, day: date, index: int, count: int, key: str) -> datetime:
    """When the `index`-th (0-based) of `count` sends of the day is due."""
    opens, closes = window.bounds(day)
    return opens + (closes - opens) * ((index + _shift(key)) / count)


def due_by(window: Window, now: datetime, count: int, key: str) -> int:
    """How many of the day's `count` sends are due at `now`: exactly the slots with `slot_time(…) <= now`."""
    if count <= 0:
        return 0
    day = now.date()
    opens, closes = window.bounds(day)
    if now < opens:
        return 0
    due = max(0, min(count, math.floor((now - opens) / (closes - opens) * count - _shift(key)) + 1))
    # The estimate is float arithmetic; settle it on slot_time itself, so a worker woken at a slot finds it
    # due.
    while due < count and slot_time(window, day, due, count, key) <= now:
        due += 1
    while due > 0 and slot_time(window, day, due - 1, count, key) > now:
        due -= 1
    return due


def next_wake(window: Window, now: datetime, sent: int, count: int, key: str) -> datetime:
    """When the inbox has a send due next: its next slot today, else the start of tomorrow's window."""
    if sent < count:
        return (
            now if sent < due_by(window, now, count, key) else slot_time(window, now.date(), sent, count, key)
        )
    return window.bounds(now.date() + timedelta(days=1))[0]
