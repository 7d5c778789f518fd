"""Opens, clicks and unsubscribes arriving on signed tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from imail.errors import NotFound
from imail.events.service import record_event
from imail.kit.signing import BadSignature, Signer
from imail.kit.tenancy import Tenant, tenant_of
from imail.models import Lead, Message
from imail.models.lead import InterestStatus, LeadStatus
from imail.models.sending import SequenceState, SequenceStatus, StopReason
from imail.models.suppression import SuppressionReason, SuppressionType
from imail.models.tracking import OPEN_PIXEL
from imail.sending.service import event_ref, stop_sequence
from imail.suppressions import service as suppressions
from imail.tracking import machine, mailto
from imail.tracking.repository import TrackingRepository

CLICK_SCANNER_WINDOW = timedelta(seconds=10)
REPEAT_WINDOW = timedelta(seconds=60)  # hits of one pixel or link within this of its last event: no new event


def _read(signer: Signer, purpose: str, token: str) -> str:
    try:
        return signer.unsign(purpose, token)
    except BadSignature:
        raise NotFound("This link is not valid") from None


async def _message(session: AsyncSession, message_id: str, owner: str | None) -> Message:
    """`owner`: the workspace whose tracking domain the request came to (None: the main host, any workspace's
    emails). On a workspace's own domain another workspace's token is not valid."""
    message = await TrackingRepository(session).message(message_id)
    if message is None or (owner is not None and message.workspace_id != owner):
        raise NotFound("This link is not valid")
    return message


async def _record_hit(
    session: AsyncSession, message: Message, link: int, event_type: str, data: dict, now: datetime
) -> None:
    """Record the hit as an event (with its webhooks) when it is the first of its link in REPEAT_WINDOW, else
    as the internal `<type>.repeat` (analytics totals only): a client or scanner replaying one pixel or link
    is one event, not one per request, while every hit still counts."""
    first = await TrackingRepository(session).open_window(message.id, link, now, now - REPEAT_WINDOW)
    await record_event(session, tenant_of(message), event_type if first else f"{event_type}.repeat", data)


async def record_open(
    session: AsyncSession,
    signer: Signer,
    token: str,
    user_agent: str,
    ip: str | None,
    now: datetime,
    owner: str | None = None,
) -> None:
    message = await _message(session, _read(signer, "open", token), owner)
    is_machine = machine.open_is_machine(user_agent, ip, message.sent_at, now)
    if message.opened_at is None and not is_machine:
        message.opened_at = now
    await _record_hit(
        session,
        message,
        OPEN_PIXEL,
        "email.opened",
        {**event_ref(message), "machine": is_machine, "user_agent": user_agent[:300] or None},
        now,
    )


async def _click(
    session: AsyncSession, signer: Signer, token: str, owner: str | None
) -> tuple[Message, int, str]:
    """The email, the link's index and its original URL: only a link that was in this very email."""
    message_id, _, index = _read(signer, "click", token).rpartition(":")
    message = await _message(session, message_id, owner)
    links = message.links or []
    if not index.isdigit() or int(index) >= len(links):
        raise NotFound("This link is not valid")
    return message, int(index), links[int(index)]


async def click_target(session: AsyncSession, signer: Signer, token: str, owner: str | None = None) -> str:
    return (await _click(session, signer, token, owner))[2]


async def record_click(
    session: AsyncSession,
    signer: Signer,
    token: str,
    user_agent: str,
    now: datetime,
    owner: str | None = None,
) -> str:
    """The original link to redirect to, once the click is recorded."""
    message, index, url = await _click(session, signer, token, owner)
    is_machine = machine.click_is_machine(user_agent, message.sent_at, now, CLICK_SCANNER_WINDOW)
    if not is_machine:
        message.clicked_at = message.clicked_at or now
        message.opened_at = message.opened_at or now  # a human click implies the email was opened
    await _record_hit(
        session,
        message,
        index,
        "email.clicked",
        {**event_ref(message), "url": url, "machine": is_machine, "user_agent": user_agent[:300] or None},
        now,
    )
    return url


async def unsubscribe_target(
    session: AsyncSession, signer: Signer, token: str, owner: str | None = None
) -> Message:
    return await _message(session, _read(signer, "unsubscribe", token), owner)


async def unsubscribe(
    session: AsyncSession,
    signer: Signer,
    token: str,
    now: datetime,
    source: str = "link",
    owner: str | None = None,
) -> Message:
    """Stop the lead and suppress its address for the whole workspace (idempotent). `source`: `one_click` (RFC
    8058 POST from a mail client) or `link` (the confirmation page's button); `owner`: the workspace whose
    tracking domain the request came to, if any (another workspace's token is not found there)."""
    message = await unsubscribe_target(session, signer, token, owner)
    lead, state, _campaign = await TrackingRepository(session).lead_state_campaign(message)
    await opt_out(session, message, lead, state, source, now)
    return message


async def opt_out(
    session: AsyncSession,
    message: Message,
    lead: Lead | None,
    state: SequenceState | None,
    source: str,
    now: datetime,
) -> bool:
    """The recipient of one of our emails opted out through it (link, one-click, mailto): the address
    suppressed for the whole workspace, the lead unsubscribed, its sequence stopped, and `lead.unsubscribed`
    with `source` if the address was not suppressed already (True then). Reads no pending change: safe inside
    an inbound batch."""
    tenant = tenant_of(message)
    first = await suppressions.first_opt_out(session, tenant, message.to_email)
    if first:
        await record_event(session, tenant, "lead.unsubscribed", {**event_ref(message), "source": source})
    await suppressions.add_suppression(
        session, tenant, SuppressionType.email, message.to_email, SuppressionReason.unsubscribed
    )
    if lead is not None:
        lead.status = LeadStatus.unsubscribed.value
        lead.interest_status = InterestStatus.unsubscribed.value
        lead.interest_updated_at = now
        lead.updated_at = now
    if state is not None and state.status in (SequenceStatus.scheduled.value, SequenceStatus.sending.value):
        stop_sequence(state, StopReason.unsubscribed, now)
    return first


async def mailto_targets(
    session: AsyncSession, signer: Signer, tenant: Tenant, subjects: dict[int, str]
) -> dict[int, Message]:
    """The emails that messages (by position) sent to the List-Unsubscribe mailto address are about: the one
    named by a valid token in the subject, if it is this tenant's (a token is no key to another workspace's
    leads)."""
    repo = TrackingRepository(session)
    found: dict[int, Message] = {}
    for index, subject in subjects.items():
        for message_id in mailto.token_ids(signer, subject):
            message = await repo.message(message_id)
            if message is not None and tenant_of(message) == tenant:
                found[index] = message
                break
    return found
