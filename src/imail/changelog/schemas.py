from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class ChangelogDeprecation(BaseModel):
    kind: Literal["route", "field", "event"]
    target: str = Field(description="`METHOD /path`, `METHOD /path field`, or an event type")
    sunset: date = Field(description="The day it stops working (at least 12 months after its deprecation)")
    note: str


class ChangelogEntry(BaseModel):
    version: date = Field(description="The snapshot's date: the value to pin with `Imail-Version`")
    description: str
    endpoints_added: list[str] = Field(description="`METHOD /path` of endpoints this snapshot added")
    events_added: list[str] = Field(description="Webhook event types this snapshot added")
    deprecations: list[ChangelogDeprecation]


class Changelog(BaseModel):
    """Every snapshot, newest first; `latest` is what an unpinned request gets."""

    latest: date
    data: list[ChangelogEntry]
