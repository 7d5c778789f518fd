"""`/v1/campaigns`: sequences of steps sent from inboxes; draft → active (resume) ⇄ paused (pause) → archived
(DELETE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth import scopes
from imail.auth.deps import CallerDep, require_scope
from imail.auth.service import Caller
from imail.campaigns import service
from imail.campaigns.schemas import Campaign, CampaignCreate, CampaignUpdate, Preview, PreviewRequest
from imail.db import SessionDep
from imail.errors import Forbidden
from imail.idempotency.deps import Idempotent
from imail.kit.pagination import Page, PageParams, encode_cursor, page_params
from imail.models import CampaignStatus
from imail.sending.compose import TrackingUrls
from imail.spamcheck import service as spamcheck
from imail.spamcheck.schemas import SpamCheck, SpamCheckRequest
from imail.tracking.router import signer
from imail.tracking_domains import service as tracking_domains

router = APIRouter(
    prefix="/campaigns", tags=["Campaigns"], dependencies=[Depends(require_scope("campaigns")), Idempotent]
)


async def require_preview_scopes(caller: CallerDep) -> None:
    """A preview writes nothing: it needs read access to campaigns and leads."""
    for family in ("campaigns", "leads"):
        if not scopes.allows(caller.scopes, family, "read"):
            raise Forbidden(f"This API key lacks the `{family}:read` scope")


preview_router = APIRouter(
    prefix="/campaigns", tags=["Campaigns"], dependencies=[Depends(require_preview_scopes), Idempotent]
)


@router.get("", response_model=Page[Campaign])
async def list_campaigns(
    caller: CallerDep,
    session: SessionDep,
    params: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        CampaignStatus | None, Query(description="Only this status; archived ones show only when asked.")
    ] = None,
):
    """List campaigns, newest first; archived ones are left out unless `?status=archived`."""
    rows = await service.list_campaigns(session, caller, params, status.value if status else None)
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    return {
        "data": await service.present(session, caller, rows),
        "pagination": {
            "next_cursor": encode_cursor(rows[-1].id) if has_more and rows else None,
            "has_more": has_more,
        },
    }


@router.post("", response_model=Campaign, status_code=201)
async def create_campaign(body: CampaignCreate, caller: CallerDep, session: SessionDep):
    """Create a campaign as a draft; `POST /resume` starts it."""
    campaign = await service.create_campaign(session, caller, body)
    return await service.present_one(session, caller, campaign)


@router.get("/{campaign_id}", response_model=Campaign)
async def get_campaign(campaign_id: str, caller: CallerDep, session: SessionDep):
    """Retrieve a campaign (archived ones too)."""
    return await service.present_one(
        session, caller, await service.get_campaign(session, caller, campaign_id)
    )


@router.patch("/{campaign_id}", response_model=Campaign)
async def update_campaign(campaign_id: str, body: CampaignUpdate, caller: CallerDep, session: SessionDep):
    """Change a campaign's fields; `steps` and `inbox_ids` replace the whole list. Archived campaigns are
    read-only."""
    campaign = await service.update_campaign(session, caller, campaign_id, body)
    return await service.present_one(session, caller, campaign)


@router.post("/{campaign_id}/pause", response_model=Campaign)
async def pause_campaign(campaign_id: str, caller: CallerDep, session: SessionDep):
    """Stop sending; pausing a paused campaign changes nothing."""
    campaign = await service.pause_campaign(session, caller, campaign_id)
    return await service.present_one(session, caller, campaign)


@router.post("/{campaign_id}/resume", response_model=Campaign)
async def resume_campaign(campaign_id: str, caller: CallerDep, session: SessionDep):
    """Start or resume sending (needs steps and a connected inbox); resuming an active campaign changes
    nothing."""
    campaign = await service.resume_campaign(session, caller, campaign_id)
    return await service.present_one(session, caller, campaign)


@router.delete("/{campaign_id}", response_model=Campaign)
async def delete_campaign(campaign_id: str, caller: CallerDep, session: SessionDep):
    """Archive a campaign: sending stops at once; it stays readable with GET."""
    campaign = await service.archive_campaign(session, caller, campaign_id)
    return await service.present_one(session, caller, campaign)


async def _tracking_urls(request: Request, session: AsyncSession, caller: Caller) -> TrackingUrls:
    """The workspace's URLs: on its verified tracking domain, else on IMAIL_PUBLIC_URL."""
    hosts = await tracking_domains.workspace_hosts(session, [caller.workspace_id])
    urls = TrackingUrls(signer(request), request.app.state.settings.public_url)
    return urls.on(hosts.get(caller.workspace_id))


@preview_router.post("/{campaign_id}/preview", response_model=Preview)
async def preview_campaign(
    campaign_id: str, body: PreviewRequest, caller: CallerDep, session: SessionDep, request: Request
):
    """Render one step (and variant) for one of the campaign's leads, as it would be sent: with the footer
    when the campaign includes it, and {{unsubscribe_url}} as a signed link."""
    urls = await _tracking_urls(request, session, caller)
    return await service.preview(session, caller, campaign_id, body, urls)


@preview_router.post("/{campaign_id}/spam-check", response_model=SpamCheck)
async def spam_check_campaign(
    campaign_id: str,
    caller: CallerDep,
    session: SessionDep,
    request: Request,
    body: SpamCheckRequest | None = None,
):
    """Render every step for a sample lead (or `lead_id`) exactly as it would be sent and score it with
    SpamAssassin's spamd (IMAIL_SPAMD_URL): the score and every rule that fired. Sends and stores nothing; 409
    when spamd is not configured."""
    urls = await _tracking_urls(request, session, caller)
    return await spamcheck.spam_check(
        session, caller, campaign_id, body or SpamCheckRequest(), request.app.state.settings, urls
    )
