"""What reacts to recorded events, registered at start-up (imail.wiring), so `events` sits below the domains.

`write_events` hands every batch of new event rows to each subscriber, in registration order, inside the
caller's transaction: webhook fan-out (imail.webhooks.fanout) and the analytics rollups
(imail.analytics.rollups). The domains that react import `events`; `events` imports none of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event row about to be written: the columns of `Event`, without an ORM instance's bookkeeping (a
    sending batch records hundreds; nothing reads them back through the session)."""

    id: str
    workspace_id: str
    livemode: bool
    type: str
    created_at: datetime
    data: dict[str, Any]


Subscriber = Callable[[AsyncSession, Sequence[NewEvent]], Awaitable[object]]

_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    """Add a subscriber (once: registering the same function again changes nothing)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    """Remove a subscriber if registered (the benchmarks' what-if runs without the rollups)."""
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def subscribers() -> tuple[Subscriber, ...]:
    return tuple(_subscribers)


async def notify(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    for subscriber in _subscribers:
        await subscriber(session, events)
