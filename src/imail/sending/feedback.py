"""What inbound mail does to the sending schedule: a soft bounce puts the email back in the queue (a bounded
number of times), an out-of-office with a return date moves the lead's next step past it.

The inbound reader (imail.intake) calls these in the transaction that records the bounce or the auto-reply.
They follow the engine's conventions: `due_at` is `scheduled_at` while the state is in the due index (an
active campaign), NULL otherwise; the planner moves a due time into the lead's send window when it claims it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.models import Campaign, Lead
from imail.models.campaign import CampaignStatus
from imail.models.lead import LeadStatus
from imail.models.sending import Message, MessageStatus, SequenceState, SequenceStatus
from imail.sending.repository import SendQueue
from imail.sending.schedule import next_open
from imail.sending.sequence import window_for

# An out-of-office further away than this is not waited for (a typo'd year, a sabbatical): the sequence goes
# on.
MAX_OUT_OF_OFFICE_PUSH = timedelta(days=60)
LIVE_STATUSES = (MessageStatus.sent.value, MessageStatus.sending.value, MessageStatus.retry.value)


def retry_delay(settings: Settings, soft_bounces: int) -> timedelta:
    """The wait before resending after the n-th soft bounce of one email (1-based): doubling from the
    setting."""
    return timedelta(seconds=settings.inbound_soft_bounce_retry_seconds * 2 ** max(0, soft_bounces - 1))


async def retry_after_soft_bounce(
    session: AsyncSession,
    settings: Settings,
    message: Message,
    state: SequenceState | None,
    lead: Lead | None,
    campaign: Campaign | None,
    soft_bounces: int,
    now: datetime,
    history: list | None = None,
) -> bool:
    """Resend an email that soft-bounced (`soft_bounces` counts this one): the message goes back to `retry`
    and the lead's state is due again after `retry_delay`. False (nothing changed) when the limit
    (`inbound_soft_bounce_retries`) is used up, or when resending makes no sense any more: the email is not a
    sent one, the sequence is stopped or in flight, or a later step has already gone out (it reaches the
    recipient anyway). `history`: the lead's messages as `SendQueue.history` reads them, when the caller has
    them."""
    if soft_bounces > settings.inbound_soft_bounce_retries:
        return False
    if state is None or lead is None or campaign is None or message.status != MessageStatus.sent.value:
        return False
    if campaign.status == CampaignStatus.archived.value:
        return False
    if state.status not in (SequenceStatus.scheduled.value, SequenceStatus.finished.value):
        return False
    if lead.status not in (LeadStatus.active.value, LeadStatus.completed.value, LeadStatus.paused.value):
        return False
    if history is None:
        history = (await SendQueue(session).history([message.lead_id])).get(message.lead_id, [])
    if any(
        m.step_index > message.step_index and m.status in LIVE_STATUSES for m in history if m.id != message.id
    ):
        return False
    when = now + retry_delay(settings, soft_bounces)
    message.status = MessageStatus.retry.value
    state.status = SequenceStatus.scheduled.value
    state.stop_reason = None
    state.next_step = message.step_index
    state.scheduled_at = when
    state.due_at = when if campaign.status == CampaignStatus.active.value else None
    state.updated_at = now
    if lead.status == LeadStatus.completed.value:
        lead.status = LeadStatus.active.value  # the last step is being resent: not finished after all
    return True


def push_past(
    state: SequenceState | None, campaign: Campaign | None, lead: Lead | None, back_on: date, now: datetime
) -> datetime | None:
    """An out-of-office says the lead is back on `back_on`: their next step waits for the first opening of
    their send window on the day after. Returns the new time, or None when nothing moved (no step waiting,
    already later, or the date is in the past or more than MAX_OUT_OF_OFFICE_PUSH ahead)."""
    if state is None or campaign is None or lead is None:
        return None
    if state.status != SequenceStatus.scheduled.value or state.scheduled_at is None:
        return None
    window = window_for(campaign.send_window, lead.timezone)
    start = datetime.combine(back_on + timedelta(days=1), time(0), tzinfo=window.zone).astimezone(UTC)
    if start <= now or start - now > MAX_OUT_OF_OFFICE_PUSH:
        return None
    when = next_open(start, window, lead.id)
    if state.scheduled_at >= when:
        return None
    state.scheduled_at = when
    if state.due_at is not None:
        state.due_at = when
    state.updated_at = now
    return when


async def histories(session: AsyncSession, lead_ids: Iterable[str]) -> dict[str, list[Any]]:
    """Every message of these leads, by step (what a soft bounce's retry plans from: imail.intake.service)."""
    return await SendQueue(session).history(lead_ids)
