from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

# The reference's promise: anything deprecated keeps working for at least twelve months, and workspaces that
# use it are warned by email from six months before it goes.
MIN_SUNSET_MONTHS = 12
WARNING_MONTHS = 6

DeprecatedKind = Literal["route", "field", "event"]


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    for last in (31, 30, 29, 28):
        try:
            return date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Deprecation:
    """Something a snapshot deprecates, and the day it stops working.

    - `route`: `target` is `"METHOD /v1/path/{template}"`;
    - `field`: `target` is `"METHOD /v1/path/{template} name"`, a field of the request (JSON body or query)
    that
      callers should stop sending;
    - `event`: `target` is an event type; subscribing to it uses it.
    """

    kind: DeprecatedKind
    target: str
    sunset: date
    note: str  # what to use instead, in a sentence
    deprecated_on: date = field(default=date.min)  # filled in from the snapshot that deprecates it

    @property
    def route(self) -> tuple[str, str] | None:
        """(METHOD, path template) of a route or field deprecation."""
        if self.kind == "event":
            return None
        method, path = self.target.split()[:2]
        return method.upper(), path

    @property
    def field_name(self) -> str | None:
        return self.target.split()[2] if self.kind == "field" else None

    @property
    def warn_from(self) -> date:
        return add_months(self.sunset, -WARNING_MONTHS)


@dataclass(frozen=True)
class VersionChange:
    """What one dated snapshot added on top of the one before it, and what it deprecated."""

    date: date
    description: str
    endpoints: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (METHOD, path template)
    events: frozenset[str] = field(default_factory=frozenset)
    deprecations: tuple[Deprecation, ...] = ()

    def __post_init__(self) -> None:
        dated = []
        for deprecation in self.deprecations:
            if deprecation.kind == "field" and len(deprecation.target.split()) != 3:
                raise ValueError(f"a field deprecation names `METHOD /path field`: {deprecation.target!r}")
            if deprecation.kind == "route" and len(deprecation.target.split()) != 2:
                raise ValueError(f"a route deprecation names `METHOD /path`: {deprecation.target!r}")
            if deprecation.sunset < add_months(self.date, MIN_SUNSET_MONTHS):
                raise ValueError(
                    f"{deprecation.target} sunsets {deprecation.sunset}, less than {MIN_SUNSET_MONTHS} "
                    "months after "
                    f"its deprecation in {self.date}"
                )
            dated.append(
                Deprecation(
                    deprecation.kind, deprecation.target, deprecation.sunset, deprecation.note, self.date
                )
            )
        object.__setattr__(self, "deprecations", tuple(dated))
