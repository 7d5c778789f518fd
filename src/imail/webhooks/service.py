"""The rules of webhook endpoints: URL and subscription checks, version pinning, enable, test events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller
from imail.config import Settings
from imail.errors import Conflict, InvalidField, NotFound
from imail.events.service import add_event_row
from imail.events.types import EVENT_TYPES
from imail.kit import crypto, versions
from imail.kit.clock import utcnow
from imail.kit.pagination import PageParams
from imail.models import WebhookDelivery, WebhookEndpoint
from imail.webhooks import urls
from imail.webhooks.fanout import ALL_EVENTS, deliver_to, forget_subscriptions
from imail.webhooks.repository import DeliveryRepository, WebhookEndpointRepository, WebhookMaintenance
from imail.webhooks.schemas import WebhookCreate
from imail.webhooks.signing import new_secret, seal_secret

TEST_EVENT_TYPE = "webhook.test"


@dataclass(frozen=True)
class CreatedWebhook:
    endpoint: WebhookEndpoint
    secret: str


def _introduced(event_type: str) -> date:
    return versions.event_introduced(event_type) or versions.FIRST


def check_events(events: list[str], api_version: date) -> list[str]:
    """The subscription, deduplicated; unknown types and types newer than the API version are 400s."""
    unavailable = versions.events_unavailable(api_version)
    chosen: list[str] = []
    for index, event_type in enumerate(events):
        field = f"events[{index}]"
        if event_type != ALL_EVENTS and event_type not in EVENT_TYPES:
            raise InvalidField(
                f'Unknown event type {event_type!r}; use "*" or one of: {", ".join(EVENT_TYPES)}', field
            )
        if event_type in unavailable:
            since = _introduced(event_type)
            raise InvalidField(
                f"{event_type} is not available in API version {api_version.isoformat()}; it was added in "
                f"{since.isoformat()}. Create the endpoint with Imail-Version: {since.isoformat()} or later "
                f"to receive it",
                field,
            )
        if event_type not in chosen:
            chosen.append(event_type)
    return [ALL_EVENTS] if ALL_EVENTS in chosen else chosen


async def create_webhook(
    session: AsyncSession, caller: Caller, body: WebhookCreate, api_version: date, settings: Settings
) -> CreatedWebhook:
    events = check_events(body.events, api_version)
    url = await urls.validate(body.url, settings.webhooks_allow_private)
    secret = new_secret()
    repo = WebhookEndpointRepository(session, caller.tenant)
    endpoint = await repo.add(
        repo.new(
            url=url,
            description=body.description.strip(),
            events=events,
            secret_encrypted=seal_secret(settings, secret),
            api_version=api_version,
            status="enabled",
        )
    )
    forget_subscriptions(session)
    return CreatedWebhook(endpoint, secret)


async def list_webhooks(session: AsyncSession, caller: Caller, params: PageParams) -> list[WebhookEndpoint]:
    return await WebhookEndpointRepository(session, caller.tenant).page(params)


async def get_webhook(session: AsyncSession, caller: Caller, webhook_id: str) -> WebhookEndpoint:
    endpoint = await WebhookEndpointRepository(session, caller.tenant).get(webhook_id)
    if endpoint is None:
        raise NotFound(f"No webhook {webhook_id}")
    return endpoint


async def delete_webhook(session: AsyncSession, caller: Caller, webhook_id: str) -> None:
    """Unregister the endpoint: gone from the API at once, nothing more is sent to it, and what it was still
    owed is marked failed. The row itself stays until retention purges it, so a transaction that read the
    endpoint a moment ago can still add its delivery (which is then never attempted) instead of failing."""
    endpoint = await get_webhook(session, caller, webhook_id)
    now = utcnow()
    endpoint.status = "deleted"
    endpoint.updated_at = now
    await DeliveryRepository(session, caller.tenant).fail_pending(
        webhook_id, "not attempted: the endpoint was deleted", now
    )
    forget_subscriptions(session)
    await session.flush()


async def enable_webhook(session: AsyncSession, caller: Caller, webhook_id: str) -> WebhookEndpoint:
    """Turn a disabled endpoint back on (idempotent); it receives events recorded from now on."""
    endpoint = await get_webhook(session, caller, webhook_id)
    if endpoint.status != "enabled":
        endpoint.status = "enabled"
        endpoint.disabled_reason = None
        endpoint.disabled_at = None
        endpoint.failing_since = None
        forget_subscriptions(session)
        await session.flush()
    return endpoint


async def list_deliveries(
    session: AsyncSession, caller: Caller, webhook_id: str, params: PageParams, status: str | None
) -> list[WebhookDelivery]:
    await get_webhook(session, caller, webhook_id)
    return await DeliveryRepository(session, caller.tenant).page_for(webhook_id, params, status)


async def send_test(session: AsyncSession, caller: Caller, webhook_id: str) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint alone, due at once and retried like any other delivery."""
    endpoint = await get_webhook(session, caller, webhook_id)
    if endpoint.status != "enabled":
        raise Conflict(
            f"Webhook {webhook_id} is disabled; enable it first with POST /v1/webhooks/{webhook_id}/enable"
        )
    event = await add_event_row(
        session,
        caller.tenant,
        TEST_EVENT_TYPE,
        {
            "webhook_id": endpoint.id,
            "message": "A test event sent with POST /v1/webhooks/{id}/test.",
        },
        utcnow(),
    )
    return await deliver_to(session, event, endpoint.id)


async def rotate_secrets(database: Any, settings: Settings, batch: int = 200) -> crypto.Rotation:
    """Re-encrypt every endpoint's signing secret under the current IMAIL_SECRET_KEY (`imail secrets
    rotate`)."""
    box = crypto.secret_box(settings, crypto.WEBHOOK_SECRETS)
    return await crypto.rotate_column(database, WebhookMaintenance, "secret_encrypted", box, batch)
