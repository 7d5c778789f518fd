"""Recording events: one function, called by domain code inside the transaction of the change itself."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from imail.events.repository import EventRepository
from imail.events.types import EVENT_TYPES
from imail.kit.clock import utcnow
from imail.kit.tenancy import Tenant
from imail.models import Event
from imail.webhooks.fanout import fan_out
from imail.analytics.rollups import apply_event as apply_rollups


async def record_event(session: AsyncSession, tenant: Tenant, event_type: str, data: BaseModel | dict[str, Any]) -> Event:
    """Add an event to the log, and the webhook deliveries it owes, in the caller's transaction: both exist if and
    only if that transaction commits."""
    schema = EVENT_TYPES.get(event_type)
    if schema is None:
        raise ValueError(f"unknown event type {event_type!r}")
    payload = data if isinstance(data, schema) else schema.model_validate(data.model_dump() if isinstance(data, BaseModel) else data)
    repo = EventRepository(session, tenant)
    event = await repo.add(repo.new(type=event_type, created_at=utcnow(), data=payload.model_dump(mode="json")))
    # Webhook deliveries are owed in the same transaction: they exist if and only if the event does.
    await fan_out(session, event)
    # Analytics rollups too (imail.analytics.rollups): counted if and only if the event exists.
    await apply_rollups(session, tenant, event_type, event.data, event.created_at)
    return event
