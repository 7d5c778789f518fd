"""`health_score`: one 0–100 figure per inbox from its connection and its last 7 days. Pure: no I/O, no clock.

    quality = 0.40 · bounce + 0.35 · placement + 0.25 · reply          (each part 0–100)
      bounce    = 100 · (1 − bounce_rate / 5 %)          clamped: 0 % → 100, 2.5 % → 50, ≥ 5 % → 0
      placement = 100 · (inbox_rate − 50 %) / 50 %        clamped: 100 % → 100, ≤ 50 % → 0
      reply     = 100 · reply_rate / 5 %                  clamped: ≥ 5 % → 100, 0 % → 0
    A part whose sample is too small (fewer than 20 sends, or 20 warmup messages) counts as NEUTRAL = 70.
    health_score = quality × connection factor, rounded half up, connection factor: connected 1, setup_pending
    0.5, disconnected 0.25.

So a new connected inbox (no data yet) scores 70; a perfect one 100; an unusable one at most 25.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NEUTRAL = 70.0
MIN_SAMPLE = 20
WEIGHTS = {"bounce": 0.40, "placement": 0.35, "reply": 0.25}
BOUNCE_ZERO_AT = 0.05  # bounce rate at which the bounce part reaches 0
REPLY_FULL_AT = 0.05  # reply rate at which the reply part reaches 100
PLACEMENT_ZERO_AT = 0.50  # inbox-placement rate at (or below) which the placement part is 0
CONNECTION_FACTOR = {"connected": 1.0, "setup_pending": 0.5, "disconnected": 0.25}


@dataclass(frozen=True)
class InboxStats:
    """Counts over the last 7 days. All zero (the default) means "no data": every part is neutral."""

    sent: int = 0  # campaign emails handed to SMTP
    bounced: int = 0  # of those, hard or soft bounces
    replied: int = 0  # of those, replied to
    warmup_sent: int = 0  # warmup emails whose placement is known
    warmup_inbox: int = 0  # of those, landed in the inbox (not spam)


def _clamp(value: float, low: float = 0.0, high: float = 100.0) -> float:
    return max(low, min(high, value))


def bounce_part(stats: InboxStats) -> float:
    if stats.sent < MIN_SAMPLE:
        return NEUTRAL
    return _clamp(100.0 * (1.0 - (stats.bounced / stats.sent) / BOUNCE_ZERO_AT))


def reply_part(stats: InboxStats) -> float:
    if stats.sent < MIN_SAMPLE:
        return NEUTRAL
    return _clamp(100.0 * (stats.replied / stats.sent) / REPLY_FULL_AT)


def placement_part(stats: InboxStats) -> float:
    if stats.warmup_sent < MIN_SAMPLE:
        return NEUTRAL
    rate = stats.warmup_inbox / stats.warmup_sent
    return _clamp(100.0 * (rate - PLACEMENT_ZERO_AT) / (1.0 - PLACEMENT_ZERO_AT))


def health_score(status: str, stats: InboxStats | None = None) -> int:
    """0–100; see the module docstring for the formula."""
    stats = stats or InboxStats()
    quality = (
        WEIGHTS["bounce"] * bounce_part(stats)
        + WEIGHTS["placement"] * placement_part(stats)
        + WEIGHTS["reply"] * reply_part(stats)
    )
    factor = CONNECTION_FACTOR.get(status, 0.0)
    return int(_clamp(math.floor(quality * factor + 0.5)))  # half up, not banker's rounding
