"""Reply rules for the API: the unified inbox, label corrections, and answering a lead in its thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller
from imail.db import Database
from imail.errors import Conflict, NotFound, ServiceUnavailable
from imail.events.service import record_event
from imail.inboxes.connection import CredentialsUnavailable, endpoints_for
from imail.inboxes.monitor import report_token_failure
from imail.inboxes.outbound import OutboundContext, outbound_slot
from imail.inboxes.service import find_inbox
from imail.kit import csv_export
from imail.kit.clock import utcnow
from imail.kit.ids import new_id
from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant
from imail.leads.service import get_lead
from imail.mail import smtp
from imail.mail.endpoint import MailConnectionError, MailRejected
from imail.mail.mime import Outbound, build, domain_of, make_message_id
from imail.models import Inbox, Lead, Message, Reply
from imail.models.inbox import InboxStatus
from imail.models.reply import ReplyDirection
from imail.models.sending import MessageStatus
from imail.replies import schemas
from imail.replies.labels import apply_label
from imail.replies.repository import EXPORT_COLUMNS, LeadThread, ReplyRepository
from imail.replies.schemas import LeadReplyCreate, ReplyUpdate, ThreadItem
from imail.replies.training import record_correction
from imail.sending.sequence import reply_subject
from imail.suppressions import service as suppressions

log = structlog.get_logger("imail.replies")

MAX_REFERENCES = 20
SENT = (MessageStatus.sent.value, MessageStatus.bounced.value, MessageStatus.unknown.value)


async def list_replies(
    session: AsyncSession,
    caller: Caller,
    params: PageParams,
    *,
    campaign_id: str | None,
    inbox_id: str | None,
    lead_id: str | None,
    label: str | None,
    auto_reply: bool | None,
    direction: str | None,
) -> list[Reply]:
    return await ReplyRepository(session, caller.tenant).list_page(
        params,
        campaign_id=campaign_id,
        inbox_id=inbox_id,
        lead_id=lead_id,
        label=label,
        auto_reply=auto_reply,
        direction=direction,
    )


def export_replies(database: Database, tenant: Tenant, **filters: Any) -> AsyncIterator[bytes]:
    """The matching replies (the list's filters) as CSV bytes, oldest first, read in keyset pages (constant
    memory). The new text of each (`reply_text`), not the quoted history."""

    async def fetch(session: AsyncSession, after: str | None, limit: int) -> list[Any]:
        return await ReplyRepository(session, tenant).export_batch(after, limit, **filters)

    def to_cells(row: Any) -> list[str]:
        return [csv_export.safe_cell(getattr(row, name)) for name in EXPORT_COLUMNS]

    return csv_export.keyset_export(database.read, EXPORT_COLUMNS, fetch, to_cells)


async def get_reply(session: AsyncSession, caller: Caller, reply_id: str) -> Reply:
    reply = await ReplyRepository(session, caller.tenant).get(reply_id)
    if reply is None:
        raise NotFound(f"No reply {reply_id}")
    return reply


async def thread_of(session: AsyncSession, caller: Caller, lead_id: str) -> list[ThreadItem]:
    """Every email between us and a lead, oldest first: our sequence's emails and the replies both ways."""
    items: list[ThreadItem] = []
    for message in await LeadThread(session, caller.tenant).messages(lead_id):
        items.append(
            ThreadItem(
                object="message",
                id=message.id,
                direction="outbound",
                from_email="",
                to_email=message.to_email,
                subject=message.subject,
                at=message.sent_at or message.created_at,
                status=message.status,
                step=message.step_index + 1,
            )
        )
    for reply in await ReplyRepository(session, caller.tenant).of_lead(lead_id):
        items.append(
            ThreadItem(
                object="reply",
                id=reply.id,
                direction=reply.direction,
                from_email=reply.from_email,
                to_email=(reply.to_emails or [""])[0],
                subject=reply.subject,
                at=reply.received_at,
                status=reply.status,
                label=reply.label,
                auto_reply=reply.auto_reply,
                text=reply.reply_text,
            )
        )
    items.sort(key=lambda item: (item.at, item.id))
    return items


async def reply_detail(session: AsyncSession, caller: Caller, reply_id: str) -> dict:
    reply = await get_reply(session, caller, reply_id)
    thread = await thread_of(session, caller, reply.lead_id)
    inbox = await find_inbox(session, caller.tenant, reply.inbox_id)
    for item in thread:  # our emails went from the lead's inbox
        if item.object == "message" and inbox is not None:
            item.from_email = inbox.email
    return {
        **schemas.Reply.model_validate(reply).model_dump(),
        "rfc_message_id": reply.rfc_message_id,
        "in_reply_to": reply.in_reply_to,
        "reference_ids": reply.reference_ids or [],
        "headers": reply.headers or {},
        "text": reply.text,
        "thread": thread,
    }


async def update_reply(session: AsyncSession, caller: Caller, reply_id: str, body: ReplyUpdate) -> Reply:
    """Correct a label: the lead's interest status follows, `reply.classified` fires with the new label, and
    the correction is kept for the workspace's own model (`imail replies train`)."""
    reply = await get_reply(session, caller, reply_id)
    if reply.direction != ReplyDirection.inbound.value:
        raise Conflict(f"Reply {reply.id} is our own answer; only inbound replies have a label", "label")
    label = body.label.value
    if reply.label == label and reply.label_source == "manual":
        return reply  # the same correction again: nothing changes, nothing fires
    now = utcnow()
    previous = reply.label
    await record_correction(session, caller.tenant, reply, label, now)
    reply.label = label
    reply.confidence = 1.0
    reply.label_source = "manual"
    reply.updated_at = now
    lead = await get_lead(session, caller, reply.lead_id)
    state = await LeadThread(session, caller.tenant).state(reply.lead_id)
    answered = next(
        (
            m
            for m in await LeadThread(session, caller.tenant).messages(reply.lead_id)
            if m.id == reply.message_id
        ),
        None,
    )
    await apply_label(session, caller.tenant, lead, state, label, now, previous=previous, message=answered)
    await record_event(
        session,
        caller.tenant,
        "reply.classified",
        {
            "reply_id": reply.id,
            "lead_id": reply.lead_id,
            "campaign_id": reply.campaign_id,
            "label": label,
            "confidence": 1.0,
        },
    )
    await session.flush()
    return reply


def _thread_headers(messages: list[Message], replies: list[Reply]) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) for an answer: the thread's Message-IDs in order, the newest last."""
    timeline: list[tuple[datetime, str]] = [
        (m.sent_at or m.created_at, m.message_id_header)
        for m in messages
        if m.status in SENT and m.message_id_header
    ]
    timeline += [(r.received_at, r.rfc_message_id) for r in replies if r.rfc_message_id]
    timeline.sort(key=lambda item: item[0])
    ids: list[str] = []
    for _, header in timeline:
        if header not in ids:
            ids.append(header)
    if len(ids) > MAX_REFERENCES:  # keep the thread's root and the newest ones (RFC 5322 §3.6.4)
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return (ids[-1] if ids else None), ids


@dataclass(frozen=True)
class _Answer:
    """An answer ready to send: everything read from the database, and the message itself."""

    lead: Lead
    inbox: Inbox
    message_id: str
    header_id: str
    in_reply_to: str | None
    references: list[str]
    subject: str
    data: bytes


async def _prepare_answer(
    session: AsyncSession, caller: Caller, lead_id: str, body: LeadReplyCreate
) -> _Answer:
    lead = await get_lead(session, caller, lead_id)
    blocked = await suppressions.is_suppressed(session, caller.tenant, lead.email)
    if blocked is not None:
        raise Conflict(f"{lead.email} cannot be emailed: {blocked.describe()}", "lead_id")
    thread = LeadThread(session, caller.tenant)
    messages = [m for m in await thread.messages(lead.id) if m.status in SENT]
    if not messages:
        raise Conflict(
            f"No email has been sent to lead {lead.id} yet: there is no thread to answer in", "lead_id"
        )
    state = await thread.state(lead.id)
    inbox_id = (state.inbox_id if state is not None and state.inbox_id else None) or messages[0].inbox_id
    inbox = await find_inbox(session, caller.tenant, inbox_id) if inbox_id else None
    if inbox is None:
        raise Conflict(f"The inbox that wrote to lead {lead.id} ({inbox_id}) no longer exists", "lead_id")
    if inbox.status != InboxStatus.connected.value:
        raise Conflict(
            f"Inbox {inbox.id} ({inbox.email}) is {inbox.status}; reconnect it before answering", "lead_id"
        )

    replies = await ReplyRepository(session, caller.tenant).of_lead(lead.id)
    in_reply_to, references = _thread_headers(messages, replies)
    subject = (
        body.subject.strip() if body.subject and body.subject.strip() else reply_subject(messages[0].subject)
    )
    header_id = make_message_id(domain_of(inbox.email))
    name = " ".join(p for p in (lead.first_name, lead.last_name) if p)
    data = build(
        Outbound(
            from_email=inbox.email,
            from_name=inbox.name,
            to_email=lead.email,
            to_name=name,
            subject=subject,
            text=body.text,
            html=body.html,
            message_id=header_id,
            in_reply_to=in_reply_to,
            references=references,
        )
    )
    return _Answer(lead, inbox, messages[-1].id, header_id, in_reply_to, references, subject, data)


async def answer_lead(
    session: AsyncSession, caller: Caller, ctx: OutboundContext, lead_id: str, body: LeadReplyCreate
) -> Reply:
    """Send an answer to a lead from the inbox that wrote to it, threaded under the conversation. Test mode
    records it without sending. The thread is read before the SMTP send and the answer written after it, so no
    database connection waits on the mail server."""
    async with ctx.database.read() as reader:
        answer = await _prepare_answer(reader, caller, lead_id, body)
    lead, inbox, settings = answer.lead, answer.inbox, ctx.settings
    status = "recorded"
    if caller.livemode:
        async with outbound_slot(ctx, session, caller.workspace_id):
            try:
                endpoints = await endpoints_for(inbox, settings, ctx.http)
                await smtp.send_message(
                    endpoints.smtp,
                    inbox.email,
                    [lead.email],
                    answer.data,
                    timeout=settings.mail_timeout,
                    ca_file=settings.mail_ca_file,
                    allow_private=settings.mail_allow_private,
                )
            except CredentialsUnavailable as exc:
                if exc.judged_at_once:
                    # Recorded on the inbox (disconnected, or backing off) in a transaction of its own: this
                    # request's own writes are rolled back with its error.
                    async with ctx.database.transaction() as own:
                        await report_token_failure(own, inbox, exc, utcnow())
                if exc.transient:
                    raise ServiceUnavailable(f"{exc.detail}; nothing was sent, try again later") from None
                raise Conflict(f"Inbox {inbox.id} cannot log in: {exc.detail}", "lead_id") from None
            except MailConnectionError as exc:
                raise ServiceUnavailable(f"{exc.message}; nothing was sent, try again") from None
            except MailRejected as exc:
                raise Conflict(f"The SMTP server refused the answer: {exc}", "lead_id") from None
        status = "sent"
    now = utcnow()
    reply = Reply(
        id=new_id("rpl"),
        workspace_id=caller.workspace_id,
        livemode=caller.livemode,
        direction=ReplyDirection.outbound.value,
        campaign_id=lead.campaign_id,
        lead_id=lead.id,
        inbox_id=inbox.id,
        message_id=answer.message_id,
        rfc_message_id=answer.header_id,
        in_reply_to=answer.in_reply_to,
        reference_ids=answer.references,
        from_email=inbox.email,
        from_name=inbox.name or "",
        to_emails=[lead.email],
        subject=answer.subject,
        headers={},
        text=body.text,
        reply_text=body.text,
        label=None,
        confidence=None,
        label_source=None,
        auto_reply=False,
        out_of_office=False,
        return_date=None,
        folder=None,
        status=status,
        received_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(reply)
    await session.flush()
    log.info("answer sent" if status == "sent" else "answer recorded", lead_id=lead.id, inbox_id=inbox.id)
    return reply
