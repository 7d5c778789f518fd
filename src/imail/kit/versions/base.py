from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class VersionChange:
    """What one dated snapshot added on top of the one before it."""

    date: date
    description: str
    endpoints: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (METHOD, path template)
    events: frozenset[str] = field(default_factory=frozenset)
