"""`/v1/inboxes` (connect, list with health scores, change, delete, reconnect, warmup state) and the OAuth
callback the providers redirect to (`/oauth/callback`, outside /v1: its URL is registered with the
provider)."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.idempotency.deps import Idempotent
from imail.inboxes import service
from imail.inboxes.outbound import OutboundContext, OutboundContextDep
from imail.inboxes.schemas import Inbox, InboxCreate, InboxDeleted, InboxUpdate
from imail.kit.pagination import Page, PageParams, build_page, page_params
from imail.warmup.schemas import WarmupSettings

router = APIRouter(
    prefix="/inboxes", tags=["Inboxes"], dependencies=[Depends(require_scope("inboxes")), Idempotent]
)
oauth_router = APIRouter(tags=["Inboxes"])


async def _one(session, caller, inbox, ctx: OutboundContext) -> Inbox:
    return Inbox.model_validate((await service.with_views(session, caller.tenant, [inbox], ctx))[0])


@router.get("", response_model=Page[Inbox])
async def list_inboxes(
    caller: CallerDep,
    session: SessionDep,
    ctx: OutboundContextDep,
    params: Annotated[PageParams, Depends(page_params)],
):
    """List the workspace's inboxes in the caller's ledger, newest first, with health scores and warmup
    state."""
    rows = await service.list_inboxes(session, caller, params)
    return build_page(await service.with_views(session, caller.tenant, rows, ctx), params, Inbox)


@router.post("", response_model=Inbox, status_code=201)
async def create_inbox(body: InboxCreate, caller: CallerDep, session: SessionDep, ctx: OutboundContextDep):
    """Connect an inbox. Custom inboxes answer only after logging in to both servers (400 naming the failing
    side; nothing is stored); hosts on loopback, private, link-local or metadata addresses are refused (400),
    and a workspace with too many logins in flight gets 429. Google and Microsoft answer `setup_pending` with
    a `setup_url`."""
    inbox = await service.create_inbox(session, caller, body, ctx)
    return await _one(session, caller, inbox, ctx)


@router.get("/{inbox_id}", response_model=Inbox)
async def get_inbox(inbox_id: str, caller: CallerDep, session: SessionDep, ctx: OutboundContextDep):
    """Retrieve an inbox."""
    inbox = await service.get_inbox(session, caller.tenant, inbox_id)
    return await _one(session, caller, inbox, ctx)


@router.patch("/{inbox_id}", response_model=Inbox)
async def update_inbox(
    inbox_id: str,
    body: InboxUpdate,
    caller: CallerDep,
    session: SessionDep,
    ctx: OutboundContextDep,
    request: Request,
):
    """Change limits, gap, name, signature, tracking domain or server settings; new server settings are logged
    in with first. A new `tracking_domain` is checked in DNS before the answer (see PATCH /v1/workspace); 409
    when another workspace uses it."""
    inbox = await service.update_inbox(session, caller, inbox_id, body, ctx)
    if "tracking_domain" in body.model_fields_set:
        request.app.state.tracking_hosts.clear()  # the old host and the new one: who owns them changed
    return await _one(session, caller, inbox, ctx)


@router.post(
    "/{inbox_id}/tracking-domain/verify",
    response_model=Inbox,
    summary="Verify an inbox's tracking domain now",
)
async def verify_inbox_tracking_domain(
    inbox_id: str, caller: CallerDep, session: SessionDep, ctx: OutboundContextDep, request: Request
):
    """Ask DNS again now whether the inbox's tracking domain points to this server (it is also re-checked
    periodically); 409 when the inbox has none. DNS being unreachable leaves the status as it was."""
    inbox = await service.verify_tracking_domain(session, caller, inbox_id, ctx)
    request.app.state.tracking_hosts.forget(inbox.tracking_domain)
    return await _one(session, caller, inbox, ctx)


@router.delete("/{inbox_id}", response_model=InboxDeleted)
async def delete_inbox(
    inbox_id: str,
    caller: CallerDep,
    session: SessionDep,
    force: Annotated[
        bool, Query(description="Delete even if an active campaign sends only from this inbox.")
    ] = False,
):
    """Delete an inbox and its stored credentials. 409 while an active campaign still sends only from it."""
    await service.delete_inbox(session, caller, inbox_id, force)
    return InboxDeleted(id=inbox_id)


@router.post("/{inbox_id}/reconnect", response_model=Inbox)
async def reconnect_inbox(inbox_id: str, caller: CallerDep, session: SessionDep, ctx: OutboundContextDep):
    """Log in to both servers again now and answer with the resulting status (`last_error` says why if it
    failed). Failed reads are forgotten: an inbox they disconnected is connected again if both logins work."""
    inbox = await service.reconnect_inbox(session, caller, inbox_id, ctx)
    return await _one(session, caller, inbox, ctx)


@router.post("/{inbox_id}/warmup/start", response_model=Inbox)
async def start_inbox_warmup(
    inbox_id: str,
    caller: CallerDep,
    session: SessionDep,
    ctx: OutboundContextDep,
    body: WarmupSettings | None = None,
):
    """Start (or resume) warmup on a connected inbox: it joins the deployment's warmup pool. Idempotent. An
    optional body sets the ramp (the same fields as `warmup` in PATCH)."""
    inbox = await service.start_warmup(session, caller, inbox_id, body)
    return await _one(session, caller, inbox, ctx)


@router.post("/{inbox_id}/warmup/pause", response_model=Inbox)
async def pause_inbox_warmup(inbox_id: str, caller: CallerDep, session: SessionDep, ctx: OutboundContextDep):
    """Pause warmup. Idempotent."""
    inbox = await service.pause_warmup(session, caller, inbox_id)
    return await _one(session, caller, inbox, ctx)


@router.post(
    "/{inbox_id}/sending/pause",
    response_model=Inbox,
    summary="Pause an inbox's campaign sending",
    responses={404: {"description": "No such inbox in this workspace and mode."}},
)
async def pause_inbox_sending(inbox_id: str, caller: CallerDep, session: SessionDep, ctx: OutboundContextDep):
    """Stop campaign emails from this inbox until resumed (`sending_paused_reason: manual`);
    `inbox.sending_paused` fires. Bounce protection and SMTP policy rejections (5.7.x) pause it the same way
    on their own. The inbox stays connected: replies and bounces are still read, and warmup goes on.
    Idempotent: pausing a paused inbox changes nothing and fires nothing. Needs `inboxes:write`."""
    inbox = await service.pause_sending(session, caller, inbox_id)
    return await _one(session, caller, inbox, ctx)


@router.post(
    "/{inbox_id}/sending/resume",
    response_model=Inbox,
    summary="Resume an inbox's campaign sending",
    responses={404: {"description": "No such inbox in this workspace and mode."}},
)
async def resume_inbox_sending(
    inbox_id: str, caller: CallerDep, session: SessionDep, ctx: OutboundContextDep
):
    """Send campaign emails from this inbox again, whatever paused it. Bounce protection starts counting
    afresh: only emails sent from now on are judged, so the bounces behind a pause cannot pause it again at
    once. Idempotent. Needs `inboxes:write`."""
    inbox = await service.resume_sending(session, caller, inbox_id)
    return await _one(session, caller, inbox, ctx)


@oauth_router.get("/oauth/callback", response_class=HTMLResponse)
async def complete_inbox_oauth(
    session: SessionDep,
    ctx: OutboundContextDep,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
):
    """Where Google or Microsoft send the user back after consent (unauthenticated; bound to the signed
    `state` of a setup_url). Stores the refresh token and connects the inbox once XOAUTH2 logins to both
    servers work."""
    inbox = await service.complete_oauth(session, ctx, state, code, error, error_description)
    email = html.escape(inbox.email)
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>Inbox connected</title>"
        f"<p>{email} is connected to imail ({html.escape(inbox.id)}). You can close this window.</p>"
    )
