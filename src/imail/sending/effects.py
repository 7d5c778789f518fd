"""What a send's outcome does, shared by live sending (imail.sending.service), test mode's simulated outcomes
(imail.sending.simulation) and the IMAP reader (imail.intake): the events' reference to an email, stopping a
sequence, a hard bounce. Below both, so neither imports the other to reach them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from imail.events.service import record_event
from imail.kit.sql import HotPathRow
from imail.kit.tenancy import Tenant
from imail.models import Lead
from imail.models.lead import LeadStatus
from imail.models.sending import Message, SequenceState, SequenceStatus, StopReason
from imail.models.suppression import SuppressionReason, SuppressionType
from imail.suppressions import service as suppressions


def stop_sequence(state: SequenceState | HotPathRow, reason: StopReason, now: datetime) -> None:
    state.status = SequenceStatus.stopped.value
    state.stop_reason = reason.value
    state.due_at = None
    state.updated_at = now


def event_ref(message: Message | Row) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "campaign_id": message.campaign_id,
        "lead_id": message.lead_id,
        "inbox_id": message.inbox_id,
        "email": message.to_email,
        "step": message.step_index + 1,
        "variant": message.variant,
    }


async def bounce_hard(
    session: AsyncSession,
    tenant: Tenant,
    message: Message,
    lead: Lead | None,
    state: SequenceState | None,
    now: datetime,
    status_code: str,
    diagnostic: str,
) -> None:
    """A hard bounce: the event, the address suppressed, the lead stopped."""
    await record_event(
        session,
        tenant,
        "email.bounced.hard",
        {**event_ref(message), "status_code": status_code or None, "diagnostic": diagnostic[:500] or None},
    )
    await suppressions.add_suppression(
        session, tenant, SuppressionType.email, message.to_email, SuppressionReason.bounced
    )
    if lead is not None:
        lead.status = LeadStatus.bounced.value
    if state is not None:
        stop_sequence(state, StopReason.bounced, now)
