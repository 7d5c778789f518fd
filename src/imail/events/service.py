"""Recording events: one function, called by domain code inside the transaction of the change itself.

An event row, the webhook deliveries it owes and its analytics rollups are written together, so all exist if
and only if the caller's transaction commits (the deliveries and rollups by the subscribers registered at
start-up: imail.events.subscribers, filled by imail.wiring). Code that records many events in one transaction
(a sending batch, an inbound batch) wraps its work in `batched_events`: the events are then written on leaving
the block with one insert per table and one set of rollup upserts, instead of a round of statements per event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from imail.events.repository import EventRepository
from imail.events.subscribers import NewEvent, notify
from imail.events.types import ALL_EVENT_TYPES
from imail.kit.clock import utcnow
from imail.kit.deferred import collecting
from imail.kit.ids import new_id
from imail.kit.sql import insert_rows
from imail.kit.tenancy import Tenant
from imail.models import Event

_BATCH_KEY = "imail.events.batch"


def new_event(tenant: Tenant, event_type: str, data: BaseModel | dict[str, Any]) -> NewEvent:
    """The event row, its payload checked against the type's schema (not yet written)."""
    schema = ALL_EVENT_TYPES.get(event_type)
    if schema is None:
        raise ValueError(f"unknown event type {event_type!r}")
    payload = (
        data
        if isinstance(data, schema)
        else schema.model_validate(data.model_dump() if isinstance(data, BaseModel) else data)
    )
    return NewEvent(
        new_id(Event.id_prefix),
        tenant.workspace_id,
        tenant.livemode,
        event_type,
        utcnow(),
        payload.model_dump(mode="json"),
    )


async def record_event(
    session: AsyncSession, tenant: Tenant, event_type: str, data: BaseModel | dict[str, Any]
) -> NewEvent:
    """Add an event to the log, with the webhook deliveries and rollups it owes, in the caller's transaction:
    at once, or when the enclosing `batched_events` block ends."""
    event = new_event(tenant, event_type, data)
    pending: list[NewEvent] | None = session.info.get(_BATCH_KEY)
    if pending is not None:
        pending.append(event)
    else:
        await write_events(session, [event])
    return event


async def record_events(
    session: AsyncSession, items: Sequence[tuple[Tenant, str, BaseModel | dict[str, Any]]]
) -> list[NewEvent]:
    """`record_event` for many (tenant, type, data) at once, in this order."""
    async with batched_events(session):
        return [await record_event(session, tenant, event_type, data) for tenant, event_type, data in items]


@asynccontextmanager
async def batched_events(session: AsyncSession) -> AsyncIterator[None]:
    """Events recorded inside the block are written, in order, when it ends without an error (an error means
    the transaction rolls back, so nothing is owed). A block inside another joins the outer one."""
    async with collecting(session, _BATCH_KEY, list[NewEvent]) as pending:
        yield
    if pending is not None:
        await write_events(session, pending)


async def write_events(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    if not events:
        return
    # Core insert: every column is given and the rows are never read back in this transaction.
    await insert_rows(
        session,
        Event.__table__,
        [
            {
                "id": e.id,
                "workspace_id": e.workspace_id,
                "livemode": e.livemode,
                "type": e.type,
                "created_at": e.created_at,
                "data": e.data,
            }
            for e in events
        ],
    )
    # Webhook fan-out and analytics rollups, registered at start-up (imail.events.subscribers, imail.wiring).
    await notify(session, events)


async def add_event_row(
    session: AsyncSession, tenant: Tenant, event_type: str, data: dict[str, Any], created_at: datetime
) -> Event:
    """An event row alone, owing no deliveries or rollups (the webhook test event, delivered to one endpoint
    by imail.webhooks.service.send_test)."""
    events = EventRepository(session, tenant)
    return await events.add(events.new(type=event_type, created_at=created_at, data=data))
