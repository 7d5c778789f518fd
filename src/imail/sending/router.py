from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from imail.auth.deps import CallerDep, require_scope
from imail.campaigns.service import get_campaign
from imail.db import SessionDep
from imail.kit.pagination import Page, PageParams, build_page, page_params
from imail.leads.service import get_lead
from imail.sending.repository import MessageRepository
from imail.sending.schemas import Message

campaign_messages_router = APIRouter(tags=["Campaigns"], dependencies=[Depends(require_scope("campaigns"))])
lead_messages_router = APIRouter(tags=["Leads"], dependencies=[Depends(require_scope("leads"))])
Params = Annotated[PageParams, Depends(page_params)]


@campaign_messages_router.get("/campaigns/{campaign_id}/messages", response_model=Page[Message])
async def list_campaign_messages(campaign_id: str, caller: CallerDep, session: SessionDep, params: Params):
    """The emails a campaign has sent (or is sending), newest first."""
    campaign = await get_campaign(session, caller, campaign_id)
    rows = await MessageRepository(session, caller.tenant).page_for(params, campaign_id=campaign.id)
    return build_page(rows, params, Message)


@lead_messages_router.get("/leads/{lead_id}/messages", response_model=Page[Message])
async def list_lead_messages(lead_id: str, caller: CallerDep, session: SessionDep, params: Params):
    """The emails sent to one lead, newest first."""
    lead = await get_lead(session, caller, lead_id)
    rows = await MessageRepository(session, caller.tenant).page_for(params, lead_id=lead.id)
    return build_page(rows, params, Message)
