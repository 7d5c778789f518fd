"""`Imail-Version` snapshots: one module per dated change, registered here and nowhere else.

Everything the server derives from them (routing a pinned date, gating routes and event types, deprecation
headers and warnings, openapi.json's `deprecated` marks, the changelog) reads the one registry below, so none
of it can disagree with another."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from imail.errors import InvalidVersion
from imail.kit.versions import v2026_03_10, v2026_04_22, v2026_05_10, v2026_12_06, v2026_12_07
from imail.kit.versions.base import Deprecation, VersionChange

HEADER = "Imail-Version"
SHIPPED: tuple[VersionChange, ...] = tuple(
    m.CHANGE for m in (v2026_03_10, v2026_04_22, v2026_05_10, v2026_12_06, v2026_12_07)
)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Registry:
    def __init__(self, changes: Iterable[VersionChange]):
        self.changes: tuple[VersionChange, ...] = tuple(sorted(changes, key=lambda c: c.date))
        self.snapshots: tuple[date, ...] = tuple(c.date for c in self.changes)
        self.deprecations: tuple[Deprecation, ...] = tuple(d for c in self.changes for d in c.deprecations)

    def resolve(self, header: str | None) -> date:
        """The newest snapshot on or before the pinned date; the first for a date before it (the reference's
        own example pins 2026-03-01, before v1 went stable); the latest when unpinned. Only a malformed date
        is refused."""
        if header is None or not header.strip():
            return self.snapshots[-1]
        value = header.strip()
        try:
            if not _DATE.match(value):
                raise ValueError
            pinned = date.fromisoformat(value)
        except ValueError:
            raise InvalidVersion(
                f"Imail-Version must be a date like {self.snapshots[-1].isoformat()}; got {value!r}", HEADER
            ) from None
        return max((s for s in self.snapshots if s <= pinned), default=self.snapshots[0])

    def introduced(self, endpoint: tuple[str, str] | None = None, event: str | None = None) -> date | None:
        return next(
            (
                c.date
                for c in self.changes
                if (endpoint is not None and endpoint in c.endpoints)
                or (event is not None and event in c.events)
            ),
            None,
        )

    def route_deprecations(self, method: str, path: str) -> list[Deprecation]:
        """The route's own deprecation and those of its fields."""
        return [d for d in self.deprecations if d.route == (method.upper(), path)]

    def event_deprecation(self, event_type: str) -> Deprecation | None:
        return next((d for d in self.deprecations if d.kind == "event" and d.target == event_type), None)


_registry = Registry(SHIPPED)


def __getattr__(name: str) -> Any:
    # Read through the registry in force (tests install one holding a deprecation that exists only there).
    if name == "CHANGES":
        return _registry.changes
    if name == "SNAPSHOTS":
        return _registry.snapshots
    if name == "FIRST":
        return _registry.snapshots[0]
    if name == "LATEST":
        return _registry.snapshots[-1]
    if name == "DEPRECATIONS":
        return _registry.deprecations
    raise AttributeError(name)


def registry() -> Registry:
    return _registry


@contextmanager
def installed(*changes: VersionChange) -> Iterator[Registry]:
    """The shipped snapshots plus `changes`, in force until the block ends (for tests: build the app
    inside)."""
    global _registry
    previous = _registry
    _registry = Registry(SHIPPED + changes)
    try:
        yield _registry
    finally:
        _registry = previous


def resolve(header: str | None) -> date:
    return _registry.resolve(header)


def endpoint_available(snapshot: date, method: str, path: str) -> bool:
    since = _registry.introduced(endpoint=(method, path))
    return since is None or since <= snapshot


def events_unavailable(snapshot: date) -> frozenset[str]:
    """Event types introduced after a snapshot: endpoints pinned to it neither subscribe to nor receive
    them."""
    return frozenset(e for c in _registry.changes if c.date > snapshot for e in c.events)


def event_introduced(event_type: str) -> date | None:
    return _registry.introduced(event=event_type)
