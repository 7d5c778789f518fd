"""`Imail-Version` snapshots: one module per dated change, registered here and nowhere else."""

from __future__ import annotations

import re
from datetime import date

from imail.errors import InvalidVersion
from imail.kit.versions import v2026_03_10, v2026_04_22, v2026_05_10
from imail.kit.versions.base import VersionChange

CHANGES: tuple[VersionChange, ...] = tuple(
    sorted((m.CHANGE for m in (v2026_03_10, v2026_04_22, v2026_05_10)), key=lambda c: c.date)
)
SNAPSHOTS: tuple[date, ...] = tuple(c.date for c in CHANGES)
FIRST = SNAPSHOTS[0]
LATEST = SNAPSHOTS[-1]
HEADER = "Imail-Version"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def resolve(header: str | None) -> date:
    """The newest snapshot on or before the pinned date; the first for a date before it (the reference's own
    example pins 2026-03-01, before v1 went stable); the latest when unpinned. Only a malformed date is refused."""
    if header is None or not header.strip():
        return LATEST
    value = header.strip()
    try:
        if not _DATE.match(value):
            raise ValueError
        pinned = date.fromisoformat(value)
    except ValueError:
        raise InvalidVersion(f"Imail-Version must be a date like {LATEST.isoformat()}; got {value!r}", "Imail-Version") from None
    return max((s for s in SNAPSHOTS if s <= pinned), default=FIRST)


def _introduced(predicate) -> date | None:
    return next((c.date for c in CHANGES if predicate(c)), None)


def endpoint_available(snapshot: date, method: str, path: str) -> bool:
    since = _introduced(lambda c: (method, path) in c.endpoints)
    return since is None or since <= snapshot


def events_unavailable(snapshot: date) -> frozenset[str]:
    """Event types introduced after a snapshot: endpoints pinned to it neither subscribe to nor receive them."""
    return frozenset(e for c in CHANGES if c.date > snapshot for e in c.events)
