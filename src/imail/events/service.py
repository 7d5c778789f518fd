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


async def record_event(session: AsyncSession, tenant: Tenant, event_type: str, data: BaseModel | dict[str, Any]) -> Event:
    """Add an event to the log in the caller's transaction: it exists if and only if that transaction commits."""
    schema = EVENT_TYPES.get(event_type)
    if schema is None:
        raise ValueError(f"unknown event type {event_type!r}")
    payload = data if isinstance(data, schema) else schema.model_validate(data.model_dump() if isinstance(data, BaseModel) else data)
    repo = EventRepository(session, tenant)
    return await repo.add(repo.new(type=event_type, created_at=utcnow(), data=payload.model_dump(mode="json")))
