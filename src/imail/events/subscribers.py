"""What reacts to recorded events, registered at start-up (imail.wiring), so `events` sits below the domains.

`write_events` hands every batch of new event rows to each subscriber, in registration order, inside the
caller's transaction: webhook fan-out (imail.webhooks.fanout) and the analytics rollups
(imail.analytics.rollups). The domains that react import `events`; `events` imports none of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from imail.events.service import NewEvent

Subscriber = Callable[[AsyncSession, Sequence["NewEvent"]], Awaitable[object]]

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
