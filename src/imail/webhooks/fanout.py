"""Fan-out: an event becomes one pending delivery per subscribed endpoint, in the event's own transaction.

Doing it inside `record_event` (rather than in a worker following the event log with a cursor) means a
delivery exists if and only if its event committed, with no cursor to keep: events committing out of id order
can't be skipped, and the unique (webhook_id, event_id) pair means none is owed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from imail.events.subscribers import NewEvent
from imail.events.types import EVENT_TYPES
from imail.kit import versions
from imail.kit.clock import utcnow
from imail.kit.ids import new_id
from imail.kit.sql import insert_rows
from imail.kit.tenancy import Tenant, tenant_of
from imail.models import Event, WebhookDelivery
from imail.webhooks.repository import WebhookEndpointRepository

ALL_EVENTS = "*"


def receives(events: list[str], api_version: date, event_type: str) -> bool:
    """Whether an endpoint with this subscription, created under this API version, gets this event type."""
    if event_type in versions.events_unavailable(api_version):
        return False
    return ALL_EVENTS in events or event_type in events


_CACHE_KEY = "imail.webhooks.subscriptions"


async def _subscriptions(session: AsyncSession, tenant: Tenant) -> list[tuple[str, list[str], date]]:
    """The tenant's enabled endpoints, read once per transaction: code recording many events in one
    transaction (a sending batch) pays for one query, and the whole transaction sees one consistent set."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(_CACHE_KEY)
    if cached is None or cached[0] is not transaction:
        cached = (transaction, {})
        session.info[_CACHE_KEY] = cached
    by_tenant: dict[Tenant, list[tuple[str, list[str], date]]] = cached[1]
    if tenant not in by_tenant:
        by_tenant[tenant] = await WebhookEndpointRepository(session, tenant).enabled_subscriptions()
    return by_tenant[tenant]


def forget_subscriptions(session: AsyncSession) -> None:
    """Called when a transaction changes endpoints, so its later events see the change."""
    session.info.pop(_CACHE_KEY, None)


async def fan_out(session: AsyncSession, events: Sequence[NewEvent]) -> int:
    """Add a pending delivery, due at once, for every enabled endpoint of each event's tenant that receives it
    (internal event types, which only feed analytics, go nowhere)."""
    now = utcnow()
    rows = []
    for event in events:
        if event.type not in EVENT_TYPES:
            continue
        endpoints = await _subscriptions(session, tenant_of(event))
        rows += [
            {
                "id": new_id("dlv"),
                "workspace_id": event.workspace_id,
                "livemode": event.livemode,
                "webhook_id": webhook_id,
                "event_id": event.id,
                "event_type": event.type,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": event.created_at,
                "created_at": now,
                "updated_at": now,
            }
            for webhook_id, subscribed, api_version in endpoints
            if receives(subscribed, api_version, event.type)
        ]
    # Core insert: every column is given, so skip the ORM's bookkeeping.
    await insert_rows(session, WebhookDelivery.__table__, rows)
    return len(rows)


async def deliver_to(session: AsyncSession, event: Event, webhook_id: str) -> WebhookDelivery:
    """A single delivery of an event to one endpoint (test events), due now."""
    delivery = WebhookDelivery(
        workspace_id=event.workspace_id,
        livemode=event.livemode,
        webhook_id=webhook_id,
        event_id=event.id,
        event_type=event.type,
        status="pending",
        attempts=0,
        next_attempt_at=event.created_at,
    )
    session.add(delivery)
    await session.flush()
    return delivery
