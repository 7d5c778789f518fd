"""When to try a failed delivery again: pure functions of the attempt count, the clock and the settings."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime


def next_attempt_at(
    attempts: int,
    attempted_at: datetime,
    deadline: datetime,
    schedule: Sequence[float],
    jitter: float = 0.1,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> datetime | None:
    """The due time of the attempt after `attempts` failed ones, or None when the delivery has failed.

    The n-th failure waits `schedule[n-1]` seconds ±jitter; past the schedule, one final attempt comes at the
    deadline (24 h after the event by default). A `Retry-After` is honoured by never retrying sooner than it.
    """
    if attempted_at >= deadline:
        return None
    if attempts <= len(schedule):
        due = attempted_at + timedelta(seconds=schedule[attempts - 1] * (1 + jitter * (2 * rand() - 1)))
    else:
        due = deadline
    if retry_after is not None:
        due = max(due, attempted_at + timedelta(seconds=retry_after))
    return min(due, deadline)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max((moment - now).total_seconds(), 0.0)
