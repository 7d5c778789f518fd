"""What a reply's label does to its lead: the interest status (which the funnel counts) and, for an
unsubscribe request, the suppression list. Shared by the IMAP reader (a fresh classification) and `PATCH
/v1/replies/{id}` (a correction)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from imail.events.service import record_event
from imail.kit.tenancy import Tenant
from imail.models import Lead, Message
from imail.models.lead import InterestStatus, LeadStatus
from imail.models.sending import SequenceState, SequenceStatus, StopReason
from imail.models.suppression import SuppressionReason, SuppressionType
from imail.sending.service import event_ref, stop_sequence
from imail.suppressions import service as suppressions

INTEREST_OF_LABEL: dict[str, str | None] = {
    "interested": InterestStatus.interested.value,
    "not_interested": InterestStatus.not_interested.value,
    "meeting_booked": InterestStatus.meeting_booked.value,
    "out_of_office": InterestStatus.out_of_office.value,
    "wrong_person": InterestStatus.wrong_person.value,
    "unsubscribe_request": InterestStatus.unsubscribed.value,
    "neutral": None,  # says nothing about interest: the lead keeps what it had
}


async def apply_label(
    session: AsyncSession,
    tenant: Tenant,
    lead: Lead | None,
    state: SequenceState | None,
    label: str,
    now: datetime,
    previous: str | None = None,
    unsubscribe: bool = False,
    message: Message | None = None,
) -> None:
    """Set the lead's interest status from a reply's label. `previous` is the label being corrected: a
    correction to `neutral` clears the interest status that label had set (if nothing changed it since). An
    unsubscribe request suppresses the address (every campaign of the workspace) and stops the sequence;
    correcting it away later does not lift the suppression (DELETE /v1/suppressions/{id} does). `unsubscribe`
    is the classifier's safety net: the reply also reads as an opt-out, so the address is suppressed whatever
    the label. The first opt-out of an address fires `lead.unsubscribed` (source `reply`), naming `message`,
    the email replied to, when given."""
    if lead is None:
        return
    interest = INTEREST_OF_LABEL.get(label)
    if interest is None:
        set_by_previous = INTEREST_OF_LABEL.get(previous) if previous is not None else None
        if set_by_previous is not None and lead.interest_status == set_by_previous:
            lead.interest_status = None
            lead.interest_updated_at = now
            lead.updated_at = now
    elif lead.interest_status != interest:
        lead.interest_status = interest
        lead.interest_updated_at = now
        lead.updated_at = now
    if unsubscribe or interest == InterestStatus.unsubscribed.value:
        if await suppressions.first_opt_out(session, tenant, lead.email):
            ref = (
                event_ref(message)
                if message is not None
                else {"lead_id": lead.id, "campaign_id": lead.campaign_id}
            )
            await record_event(
                session, tenant, "lead.unsubscribed", {**ref, "email": lead.email, "source": "reply"}
            )
        await suppressions.add_suppression(
            session, tenant, SuppressionType.email, lead.email, SuppressionReason.unsubscribed
        )
        lead.status = LeadStatus.unsubscribed.value
        if state is not None and state.status not in (
            SequenceStatus.stopped.value,
            SequenceStatus.finished.value,
        ):
            stop_sequence(state, StopReason.unsubscribed, now)
