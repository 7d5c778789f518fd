"""The spam check: every step of a campaign rendered exactly as the sending engine would (compose), then
scored by spamd. Nothing is stored and nothing is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller
from imail.campaigns import service as campaigns
from imail.config import Settings
from imail.errors import Conflict, InvalidField, ServiceUnavailable
from imail.inboxes.service import find_inbox
from imail.kit.ids import new_id
from imail.leads.service import find_lead
from imail.mail.spamd import SpamdAddress, SpamdError, report
from imail.sending.compose import Sender, Thread, TrackingUrls, compose
from imail.spamcheck.schemas import SpamCheckRequest

NOT_CONFIGURED = (
    "The spam check needs SpamAssassin's spamd, which is not configured: install it (Debian: apt-get install "
    "spamassassin spamd), start it, and set IMAIL_SPAMD_URL=spamd://127.0.0.1:783"
)


@dataclass(frozen=True)
class SampleLead:
    """Who a campaign is rendered for when no lead is named: plausible values for every built-in field."""

    id: str = "lead_sample"
    email: str = "alex.morgan@example.com"
    first_name: str = "Alex"
    last_name: str = "Morgan"
    company: str = "Example Inc"
    title: str = "Head of Operations"
    custom_variables: dict[str, Any] = field(default_factory=dict)


async def _lead(session: AsyncSession, caller: Caller, campaign_id: str, lead_id: str | None) -> Any:
    if lead_id is None:
        return SampleLead()
    lead = await find_lead(session, caller.tenant, lead_id)
    if lead is None or lead.campaign_id != campaign_id:
        raise InvalidField(f"lead_id: no lead {lead_id} in campaign {campaign_id}", "lead_id")
    return lead


async def _sender(session: AsyncSession, caller: Caller, campaign_id: str) -> Sender:
    inbox_ids = (await campaigns.inbox_ids_of(session, caller.tenant, [campaign_id]))[campaign_id]
    inbox = await find_inbox(session, caller.tenant, inbox_ids[0]) if inbox_ids else None
    if inbox is None:
        raise Conflict(
            f"Campaign {campaign_id} has no inbox to send from; PATCH inbox_ids first", "inbox_ids"
        )
    return Sender(inbox.email, inbox.name, inbox.signature or "")


async def spam_check(
    session: AsyncSession,
    caller: Caller,
    campaign_id: str,
    body: SpamCheckRequest,
    settings: Settings,
    urls: TrackingUrls,
) -> dict[str, Any]:
    if settings.spamd_url is None:
        raise Conflict(NOT_CONFIGURED)
    address = SpamdAddress.parse(settings.spamd_url)
    campaign = await campaigns.get_campaign(session, caller, campaign_id)
    lead = await _lead(session, caller, campaign.id, body.lead_id)
    sender = await _sender(session, caller, campaign.id)
    footer = await campaigns.workspace_footer(session, caller) if campaign.include_footer else None

    steps: list[dict[str, Any]] = []
    first_subject: str | None = None
    message_ids: tuple[str, ...] = ()
    for index, step in enumerate(campaign.steps):
        composed = compose(
            message_id=new_id("msg"),
            step=step,
            step_index=index,
            lead=lead,
            sender=sender,
            thread=Thread(first_subject, message_ids),
            track_opens=campaign.track_opens,
            track_clicks=campaign.track_clicks,
            text_only=campaign.text_only,
            urls=urls,
            footer=footer,
        )
        first_subject = first_subject or composed.subject
        message_ids += (composed.message_id_header,)
        try:
            scored = await report(address, composed.data, settings.spamd_timeout)
        except SpamdError as exc:
            raise ServiceUnavailable(f"The spam check could not score step {index + 1}: {exc}") from None
        steps.append(
            {
                "step": index + 1,
                "variant": composed.variant,
                "subject": composed.subject,
                "score": scored.score,
                "threshold": scored.threshold,
                "is_spam": scored.is_spam,
                "rules": [
                    {"name": r.name, "score": r.score, "description": r.description} for r in scored.rules
                ],
            }
        )
    return {"campaign_id": campaign.id, "lead_id": body.lead_id, "steps": steps}
