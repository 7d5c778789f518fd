"""`/v1/webhooks`: endpoints (secret shown on create only), their delivery log, enable and test."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.deprecations.usage import note_used
from imail.idempotency.deps import Idempotent
from imail.kit import versions
from imail.kit.pagination import Page, PageParams, build_page, page_params
from imail.webhooks import service
from imail.webhooks.schemas import (
    DeliveryStatus,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDeleted,
    WebhookDelivery,
)

router = APIRouter(
    prefix="/webhooks", tags=["Webhooks"], dependencies=[Depends(require_scope("webhooks")), Idempotent]
)

Params = Annotated[PageParams, Depends(page_params)]


@router.get("", response_model=Page[Webhook])
async def list_webhooks(caller: CallerDep, session: SessionDep, params: Params):
    """List the webhook endpoints of the caller's workspace and ledger, newest first."""
    return build_page(await service.list_webhooks(session, caller, params), params, Webhook)


@router.post("", response_model=WebhookCreated, status_code=201)
async def create_webhook(body: WebhookCreate, request: Request, caller: CallerDep, session: SessionDep):
    """Register an endpoint. Its signing secret is in this response only. The endpoint is pinned to the
    request's `Imail-Version`: event types added after that snapshot can't be subscribed to nor delivered."""
    note_used(request, [d for event in body.events if (d := versions.registry().event_deprecation(event))])
    created = await service.create_webhook(
        session, caller, body, request.state.api_version, request.app.state.settings
    )
    return WebhookCreated.model_validate(
        {**Webhook.model_validate(created.endpoint).model_dump(), "secret": created.secret}
    )


@router.get("/{webhook_id}", response_model=Webhook)
async def get_webhook(webhook_id: str, caller: CallerDep, session: SessionDep):
    """One endpoint (without its secret)."""
    return await service.get_webhook(session, caller, webhook_id)


@router.delete("/{webhook_id}", response_model=WebhookDeleted)
async def delete_webhook(webhook_id: str, caller: CallerDep, session: SessionDep):
    """Unregister an endpoint: nothing more is sent to it; deliveries it was still owed are dropped."""
    await service.delete_webhook(session, caller, webhook_id)
    return WebhookDeleted(id=webhook_id)


@router.post("/{webhook_id}/enable", response_model=Webhook)
async def enable_webhook(webhook_id: str, caller: CallerDep, session: SessionDep):
    """Re-enable an endpoint that was disabled (410 Gone, or 24 h of failures). Idempotent."""
    return await service.enable_webhook(session, caller, webhook_id)


@router.get("/{webhook_id}/deliveries", response_model=Page[WebhookDelivery])
async def list_webhook_deliveries(
    webhook_id: str,
    caller: CallerDep,
    session: SessionDep,
    params: Params,
    status: Annotated[DeliveryStatus | None, Query(description="Only this status.")] = None,
):
    """The endpoint's delivery log, newest first: status, attempts, last answer and next attempt time."""
    rows = await service.list_deliveries(session, caller, webhook_id, params, status)
    return build_page(rows, params, WebhookDelivery)


@router.post("/{webhook_id}/test", response_model=WebhookDelivery, status_code=202)
async def test_webhook(webhook_id: str, caller: CallerDep, session: SessionDep):
    """Queue a `webhook.test` event for this endpoint now; follow it in the delivery log."""
    return await service.send_test(session, caller, webhook_id)
