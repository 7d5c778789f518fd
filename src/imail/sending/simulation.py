"""Test mode's simulated outcomes. A test-ledger send opens no SMTP connection; a `+tag` in the lead's address
(`ana+reply@example.com`) makes the outcome it names happen right after the send, with the same events a live
send would fire, so a customer's CI can exercise its webhook handlers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.events.service import record_event
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant
from imail.models.lead import InterestStatus, LeadStatus
from imail.models.sending import StopReason
from imail.sending.effects import bounce_hard, event_ref, stop_sequence

TAGS = ("bounce_hard", "bounce_soft", "open", "click", "reply", "interested")


def tags_of(email: str) -> set[str]:
    local = email.partition("@")[0]
    return {part for part in local.split("+")[1:] if part in TAGS}


async def after_send(
    session: AsyncSession, tenant: Tenant, message: Any, lead: Any, state: Any, campaign: Any, now: datetime
) -> None:
    ref = event_ref(message)
    tags = tags_of(message.to_email)
    if "bounce_hard" in tags:
        await bounce_hard(
            session, tenant, message, lead, state, now, "5.1.1", "simulated: user unknown (test mode)"
        )
        return
    if "bounce_soft" in tags:
        await record_event(
            session,
            tenant,
            "email.bounced.soft",
            {
                **ref,
                "category": "mailbox_full",
                "status_code": "4.2.2",
                "diagnostic": "simulated: mailbox full (test mode)",
                "will_retry": False,
            },
        )
        return
    await record_event(
        session, tenant, "email.delivered", {**ref, "detail": "simulated delivery (test mode)"}
    )
    if tags & {"open", "click"}:
        message.opened_at = message.opened_at or now + timedelta(seconds=1)
        await record_event(
            session, tenant, "email.opened", {**ref, "machine": False, "user_agent": "imail-test-mode"}
        )
    if "click" in tags:
        message.clicked_at = message.clicked_at or now + timedelta(seconds=2)
        url = (message.links or ["https://example.com/"])[0]
        await record_event(
            session,
            tenant,
            "email.clicked",
            {**ref, "url": url, "machine": False, "user_agent": "imail-test-mode"},
        )
    if tags & {"reply", "interested"}:
        reply_id = new_id("rpl")
        await record_event(
            session,
            tenant,
            "reply.received",
            {
                "reply_id": reply_id,
                "message_id": message.id,
                "campaign_id": message.campaign_id,
                "lead_id": message.lead_id,
                "inbox_id": message.inbox_id,
                "from_email": message.to_email,
                "subject": f"Re: {message.subject}",
                "received_at": now + timedelta(seconds=3),
            },
        )
        label = "interested" if "interested" in tags else "neutral"
        await record_event(
            session,
            tenant,
            "reply.classified",
            {
                "reply_id": reply_id,
                "lead_id": message.lead_id,
                "campaign_id": message.campaign_id,
                "label": label,
                "confidence": 1.0,
            },
        )
        lead.status = LeadStatus.replied.value
        if label == "interested":
            lead.interest_status = InterestStatus.interested.value
            lead.interest_updated_at = now
        if state is not None and (campaign is None or campaign.stop_on_reply):
            stop_sequence(state, StopReason.replied, now)
