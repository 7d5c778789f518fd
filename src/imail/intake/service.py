"""The rules of inbound mail: which of our emails a message read over IMAP belongs to, and what it does.

Matching never guesses: a reply belongs to one of our emails through its `In-Reply-To` / `References` headers
(against the Message-IDs we sent, within the inbox's workspace and ledger), else through its sender and
subject thread (the address one of our emails from this inbox went to, and the same subject once `Re:`-style
prefixes are cut). A bounce belongs to the email whose Message-ID it quotes, else to the newest email from
this inbox to the address that bounced. Anything else is ignored and recorded nowhere.

Acting (one transaction per batch, with the folder's cursor advance — see imail.intake.reader; the batch's
suppressions are written together at its end):

- hard bounce → `email.bounced.hard`, address suppressed, lead `bounced`, sequence stopped;
- soft bounce → `email.bounced.soft` with its category; the email is resent later (imail.sending.feedback) up
to
  `inbound_soft_bounce_retries` times; a delay notice (`Action: delayed`) does nothing;
- positive delivery report → `email.delivered`;
- auto-reply (RFC 3834 headers, out-of-office wording…) → a replies row with `auto_reply: true` and the
internal
  `email.auto_replied` event (counted in analytics, never sent to webhooks); the sequence goes on; an
  out-of-office with a return date moves the next step past it, and gives a lead without an interest status
  `out_of_office`;
- an email to the List-Unsubscribe mailto address (imail.tracking.mailto) → the lead unsubscribed and
suppressed,
  its sequence stopped, `lead.unsubscribed` (source `mailto`); never a replies row or `reply.received`;
- reply → a replies row, `reply.received`, lead `replied`, sequence stopped when the campaign's
`stop_on_reply`;
  then its label → the lead's interest status (imail.replies.labels) and `reply.classified`.

Each message is acted on once: an `inbound_receipts` row keyed by its Message-ID (per workspace and ledger) is
inserted first, and a message whose key is already there is skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.events.service import batched_events, record_events
from imail.intake.parser_pool import parse_fetched
from imail.intake.repository import OurEmail, ReaderQueue, ThreadLookup
from imail.kit.ids import new_id
from imail.kit.signing import Signer
from imail.kit.sql import align_updates
from imail.kit.tenancy import Tenant
from imail.mail.bounces import Bounce
from imail.mail.parsing import InboundMessage, fold
from imail.models import Campaign, Inbox, Lead, Message
from imail.models.lead import InterestStatus, LeadStatus
from imail.models.reply import ReplyDirection
from imail.models.sending import MessageStatus, SequenceState, SequenceStatus, StopReason
from imail.replies.labels import apply_label
from imail.replies.verdict import Verdict
from imail.sending import feedback, protection
from imail.sending.service import bounce_hard, confirm_unknown, event_ref, stop_sequence
from imail.suppressions.service import batched_suppressions, preload_opt_outs
from imail.tracking import mailto
from imail.tracking import service as tracking
from imail.warmup import service as warmup

log = structlog.get_logger("imail.inbound")

MAX_TEXT_CHARS = 100_000
MAX_HEADERS = 100
MAX_HEADER_CHARS = 2000
REPLIED_FROM = (LeadStatus.active.value, LeadStatus.paused.value, LeadStatus.completed.value)


def is_warmup(message: InboundMessage, marker: str | None) -> bool:
    """Warmup emails of this deployment (its marker header, see imail.warmup): the reader hands them to warmup
    and neither matches nor records them here, so they never become replies, lead events or campaign
    analytics."""
    return marker is not None and warmup.is_warmup(message, marker)


@dataclass
class Fetched:
    """One message read from a folder, parsed once."""

    uid: int
    raw: bytes
    message: InboundMessage
    bounce: Bounce
    # The shipped classifier's verdict, when a parsing process gave it (imail.intake.parser_pool): what
    # `assess` would say with no endpoint and no workspace model.
    shipped_verdict: Verdict | None = None

    @classmethod
    def read(cls, uid: int, raw: bytes) -> Fetched:
        return cls(uid, raw, *parse_fetched(raw))


@dataclass
class Match:
    message: OurEmail
    how: str  # header | subject | dsn | recipient | mailto | mailto_sender

    @property
    def opt_out(self) -> bool:
        """Sent to the List-Unsubscribe mailto address (see imail.tracking.mailto): an unsubscribe, never a
        reply."""
        return self.how in OPT_OUT_MATCHES


OPT_OUT_MATCHES = ("mailto", "mailto_sender")


def needs_label(item: Fetched, match: Match) -> bool:
    """Whether a matched message is a reply the classifier must read (not a bounce, not an unsubscribe)."""
    return not item.bounce.is_bounce and not match.opt_out


def receipt_key(tenant: Tenant, item: Fetched) -> str:
    """What identifies an inbound message across folders, inboxes and re-reads: its Message-ID in this
    workspace and ledger, or (without one) its exact bytes."""
    ident = item.message.message_id or "sha256:" + hashlib.sha256(item.raw).hexdigest()
    return hashlib.sha256(f"{tenant.workspace_id}\0{int(tenant.livemode)}\0{ident}".encode()).hexdigest()


_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|antwort|ref|rif|r|fw|fwd|wg|tr|rv|enc|doorst)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]"
    r"|(?:automatic reply|auto reply|autoreply|auto-reply|out of office|out of the office|abwesenheitsnotiz|"
    r"automatische antwort|reponse automatique|respuesta automatica|risposta automatica|automatisch antwoord)"
    r"\s*[:：-])\s*"
)


def thread_subject(subject: str) -> str:
    """A subject with its reply/forward/auto-reply prefixes cut, folded: `Re: AW: Hello` and `hello` are one
    thread."""
    text = fold(subject or "")
    while True:
        cut = _PREFIX.sub("", text, count=1)
        if cut == text:
            break
        text = cut
    return " ".join(text.split())


def _readable(item: Fetched, inbox: Inbox, warmup_marker: str | None) -> bool:
    message = item.message
    if not message.is_mail:
        return False
    if is_warmup(message, warmup_marker):
        return False
    own = (inbox.email or "").lower()
    return not (message.from_email and message.from_email == own and not item.bounce.is_bounce)


async def match_all(
    session: AsyncSession,
    tenant: Tenant,
    inbox: Inbox,
    items: list[Fetched],
    warmup_marker: str | None = None,
    skip: frozenset[int] = frozenset(),
    signer: Signer | None = None,
) -> dict[int, Match]:
    """Our email each message belongs to, by position in `items`; messages that match nothing, warmup mail
    carrying `warmup_marker`, and the positions in `skip` (delivery reports about warmup mail) are left out.
    With `signer`, unsubscribe emails sent to the List-Unsubscribe mailto address are found first (`mailto`:
    by the signed token in their subject; `mailto_sender`: token lost, from an address this inbox emailed,
    asking to unsubscribe)."""
    lookup = ThreadLookup(session, tenant)
    wanted: set[str] = set()
    readable: list[tuple[int, Fetched]] = []
    for index, item in enumerate(items):
        if index in skip or not _readable(item, inbox, warmup_marker):
            continue
        readable.append((index, item))
        if item.message.message_id:
            wanted.add(item.message.message_id)  # one of ours, read back (a copy to self): never a reply
        if item.bounce.is_bounce:
            if item.bounce.original_message_id:
                wanted.add(item.bounce.original_message_id)
        else:
            wanted.update(item.message.thread_ids)
    ours = await lookup.by_headers(wanted)

    found: dict[int, Match] = {}
    if signer is not None:
        subjects = {
            index: item.message.subject
            for index, item in readable
            if not item.bounce.is_bounce and item.message.message_id not in ours
        }
        for index, message in (await tracking.mailto_targets(session, signer, tenant, subjects)).items():
            found[index] = Match(OurEmail(message.id, message.to_email, message.subject), "mailto")
    by_address: list[tuple[int, Fetched, str]] = []
    for index, item in readable:
        if item.message.message_id in ours or index in found:
            continue
        if item.bounce.is_bounce:
            if item.bounce.kind not in ("hard", "soft", "delivered"):
                continue  # a delay notice, or a report that says nothing usable
            original = ours.get(item.bounce.original_message_id or "")
            if original is not None:
                found[index] = Match(original, "dsn")
            elif item.bounce.recipient:
                by_address.append((index, item, item.bounce.recipient.lower()))
            continue
        header = next((ours[h] for h in item.message.thread_ids if h in ours), None)
        if header is not None:
            found[index] = Match(header, "header")
        elif item.message.from_email and (thread_subject(item.message.subject) or _asks_to_unsubscribe(item)):
            by_address.append((index, item, item.message.from_email))
    if by_address:
        sent = await lookup.sent_to(inbox.id, [address for _, _, address in by_address])
        for index, item, address in by_address:
            candidates = [m for m in sent if m.to_email == address]
            if item.bounce.is_bounce:
                if candidates:
                    found[index] = Match(candidates[0], "recipient")
                continue
            subject = thread_subject(item.message.subject)
            same_thread = [m for m in candidates if thread_subject(m.subject) == subject]
            if same_thread:
                found[index] = Match(same_thread[0], "subject")
            elif candidates and signer is not None and _asks_to_unsubscribe(item):
                found[index] = Match(candidates[0], "mailto_sender")
    return found


def _asks_to_unsubscribe(item: Fetched) -> bool:
    return mailto.asks_to_unsubscribe(item.message.subject, item.message.reply_text or item.message.text)


# --- acting ---------------------------------------------------------------------------------------------


@dataclass
class Rows:
    """Our rows a batch acts on, loaded (and on PostgreSQL locked) once per transaction."""

    messages: dict[str, Message]
    leads: dict[str, Lead]
    states: dict[str, SequenceState]
    campaigns: dict[str, Campaign]


async def load_rows(session: AsyncSession, message_ids: list[str]) -> Rows:
    queue = ReaderQueue(session)
    messages = await queue.lock_messages(message_ids)
    lead_ids = [m.lead_id for m in messages.values()]
    return Rows(
        messages=messages,
        leads=await queue.leads(lead_ids),
        states=await queue.lock_states(lead_ids),
        campaigns=await queue.campaigns(m.campaign_id for m in messages.values()),
    )


def _clip_headers(headers: dict[str, list[str]]) -> dict[str, Any]:
    clipped: dict[str, Any] = {}
    for name, values in list(headers.items())[:MAX_HEADERS]:
        clipped[name] = [value[:MAX_HEADER_CHARS] for value in values[:20]]
    return clipped


def _received_at(message: InboundMessage, now: datetime) -> datetime:
    moment = message.date
    if moment is None or moment > now + timedelta(days=1) or moment < now - timedelta(days=3650):
        return now
    return moment


def new_reply(
    tenant: Tenant,
    inbox: Inbox,
    ours: Message,
    item: Fetched,
    verdict: Verdict,
    folder: str,
    now: datetime,
    reply_id: str,
) -> dict[str, Any]:
    """The replies row of an inbound reply, as the values of every column (written with the batch's others in
    one statement, see act_batch)."""
    message = item.message
    return dict(
        id=reply_id,
        workspace_id=tenant.workspace_id,
        livemode=tenant.livemode,
        direction=ReplyDirection.inbound.value,
        campaign_id=ours.campaign_id,
        lead_id=ours.lead_id,
        inbox_id=inbox.id,
        message_id=ours.id,
        rfc_message_id=message.message_id,
        in_reply_to=message.in_reply_to,
        reference_ids=list(message.references)[:50],
        from_email=(message.from_email or "")[:320],
        from_name=message.from_name[:320],
        to_emails=list(message.to)[:50],
        subject=message.subject[:2000],
        headers=_clip_headers(dict(message.headers)),
        text=message.text[:MAX_TEXT_CHARS],
        reply_text=verdict.text[:MAX_TEXT_CHARS],
        label=verdict.label,
        confidence=verdict.confidence,
        label_source=verdict.source,
        auto_reply=verdict.auto_reply,
        out_of_office=verdict.out_of_office,
        return_date=verdict.return_date,
        folder=folder,
        status="received",
        received_at=_received_at(message, now),
        created_at=now,
        updated_at=now,
    )


RECEIPT_KINDS = {"hard": "bounce_hard", "soft": "bounce_soft", "delivered": "delivered"}


def receipt_kind(item: Fetched, verdict: Verdict | None) -> str:
    if item.bounce.is_bounce:
        return RECEIPT_KINDS[item.bounce.kind]
    return "auto_reply" if verdict is not None and verdict.auto_reply else "reply"


@dataclass
class Emitted:
    """Events of a batch, recorded together once its rows are written (same transaction, same order); and, for
    the soft bounces, each email's soft bounces before this batch, its lead's history (both read up front:
    nothing is written until the batch ends), and how many of this batch's were met so far."""

    events: list[tuple[Tenant, str, dict[str, Any]]]
    replies: list[dict[str, Any]] = field(default_factory=list)  # replies rows to insert
    soft_before: dict[str, int] = field(default_factory=dict)
    histories: dict[str, list] = field(default_factory=dict)
    soft_in_batch: Counter = field(default_factory=Counter)

    def add(self, tenant: Tenant, event_type: str, data: dict[str, Any]) -> None:
        self.events.append((tenant, event_type, data))

    async def record(self, session: AsyncSession) -> None:
        await record_events(session, self.events)
        self.events.clear()


async def act_batch(
    session: AsyncSession,
    settings: Settings,
    tenant: Tenant,
    inbox: Inbox,
    folder: str,
    items: list[Fetched],
    matches: dict[int, Match],
    verdicts: dict[int, Verdict],
    now: datetime,
) -> list[str]:
    """Act on a batch's matched messages, in UID order; what each was (reply, auto_reply, bounce_hard,
    bounce_soft, delivered), `duplicate` when it had been acted on before, or `gone` when its lead was deleted
    meanwhile.

    Set-based where it can be: one statement records the receipts (and tells which messages are new), one
    writes the replies rows, one flush the lead and sequence changes, then the events follow."""
    rows = await load_rows(session, [m.message.id for m in matches.values()])
    queue = ReaderQueue(session)
    planned: list[tuple[int, str, str | None]] = []  # (index, receipt key, reply id)
    receipts: list[dict[str, Any]] = []
    seen: set[str] = set()
    outcomes: list[str] = []
    for index in sorted(matches):
        message = rows.messages.get(matches[index].message.id)
        if message is None:
            outcomes.append("gone")
            continue
        key = receipt_key(tenant, items[index])
        if key in seen:
            outcomes.append("duplicate")  # the same message twice in one batch
            continue
        seen.add(key)
        reply_id = new_id("rpl") if needs_label(items[index], matches[index]) else None
        planned.append((index, key, reply_id))
        receipts.append(
            {
                "key": key,
                "workspace_id": tenant.workspace_id,
                "inbox_id": inbox.id,
                "kind": "unsubscribe"
                if matches[index].opt_out
                else receipt_kind(items[index], verdicts.get(index)),
                "message_id": message.id,
                "reply_id": reply_id,
                "created_at": now,
            }
        )
    fresh = await queue.add_receipts(receipts)
    soft = [
        rows.messages[matches[index].message.id]
        for index, key, _ in planned
        if key in fresh and items[index].bounce.is_bounce and items[index].bounce.kind == "soft"
    ]
    emitted = Emitted(
        [],
        soft_before=await queue.receipt_counts((m.id for m in soft), "bounce_soft", exclude=fresh),
        histories=await feedback.histories(session, (m.lead_id for m in soft)),
    )
    # Whether the addresses that opt out are suppressed already (their first opt-out fires
    # `lead.unsubscribed`): one query for the batch.
    opting_out = []
    for index, key, _ in planned:
        verdict = verdicts.get(index)
        if key in fresh and (
            matches[index].opt_out
            or (verdict is not None and (verdict.unsubscribe or verdict.label == "unsubscribe_request"))
        ):
            message = rows.messages[matches[index].message.id]
            lead = rows.leads.get(message.lead_id)
            opting_out += [message.to_email, *([lead.email] if lead is not None else [])]
    if opting_out:
        await preload_opt_outs(session, tenant, opting_out)
    async with batched_events(session):  # with the hard bounces' events, which bounce_hard records itself
        async with batched_suppressions(session):
            # Nothing in the loop reads the database (what soft bounces need was read above), so nothing needs
            # the batch's pending changes flushed before it: flushing wrote them a row at a time.
            with session.no_autoflush:
                for index, key, reply_id in planned:
                    if key not in fresh:
                        outcomes.append("duplicate")
                        continue
                    outcomes.append(
                        await act(
                            session,
                            settings,
                            tenant,
                            inbox,
                            folder,
                            items[index],
                            matches[index],
                            verdicts.get(index),
                            rows,
                            now,
                            reply_id,
                            emitted,
                        )
                    )
                # The emails and sequences are locked (load_rows): the flush that ends the suppressions' block
                # can write each table's changes as one statement.
                align_updates(rows.messages.values())
                align_updates(rows.states.values())
        await session.flush()
        # The replies rows as one Core insert: the ORM's bookkeeping of a new object cost more than the row.
        await queue.add_replies(emitted.replies)
        await emitted.record(session)
        if "bounce_hard" in outcomes:
            await protection.judge_inboxes(session, settings, [inbox.id], now)
    return outcomes


async def act(
    session: AsyncSession,
    settings: Settings,
    tenant: Tenant,
    inbox: Inbox,
    folder: str,
    item: Fetched,
    match: Match,
    verdict: Verdict | None,
    rows: Rows,
    now: datetime,
    reply_id: str | None,
    emitted: Emitted,
) -> str:
    """Do what one matched message (already receipted) means."""
    message = rows.messages[match.message.id]
    lead = rows.leads.get(message.lead_id)
    state = rows.states.get(message.lead_id)
    campaign = rows.campaigns.get(message.campaign_id)
    bounce = item.bounce
    if match.opt_out:
        await tracking.opt_out(session, message, lead, state, "mailto", now)
        return "unsubscribe"
    if bounce.is_bounce:
        kind = RECEIPT_KINDS[bounce.kind]
        if kind == "bounce_hard":
            if message.status == MessageStatus.bounced.value:
                return "duplicate"  # refused at SMTP time already, or an earlier report: one bounce per email
            message.status = MessageStatus.bounced.value
            await bounce_hard(
                session, tenant, message, lead, state, now, bounce.status_code or "", bounce.diagnostic or ""
            )
        elif kind == "bounce_soft":
            emitted.soft_in_batch[message.id] += 1
            count = (
                emitted.soft_before.get(message.id, 0) + emitted.soft_in_batch[message.id]
            )  # this one included
            retry = await feedback.retry_after_soft_bounce(
                session,
                settings,
                message,
                state,
                lead,
                campaign,
                count,
                now,
                history=emitted.histories.get(message.lead_id, []),
            )
            emitted.add(
                tenant,
                "email.bounced.soft",
                {
                    **event_ref(message),
                    "category": bounce.category or "unknown",
                    "status_code": bounce.status_code,
                    "diagnostic": (bounce.diagnostic or "")[:500] or None,
                    "will_retry": retry,
                },
            )
        else:
            detail = "delivery report" + (f": {bounce.status_code}" if bounce.status_code else "")
            if bounce.diagnostic:
                detail += f" {bounce.diagnostic[:300]}"
            confirm_unknown(message, detail, now)  # an attempt a crash left unconfirmed: now it is
            emitted.add(tenant, "email.delivered", {**event_ref(message), "detail": detail})
        return kind

    assert verdict is not None and reply_id is not None
    reply = new_reply(tenant, inbox, message, item, verdict, folder, now, reply_id)
    emitted.replies.append(reply)
    if verdict.auto_reply:
        emitted.add(
            tenant,
            "email.auto_replied",
            {**event_ref(message), "reply_id": reply_id, "out_of_office": verdict.out_of_office},
        )
        if verdict.out_of_office:
            if lead is not None and lead.interest_status is None:
                lead.interest_status = InterestStatus.out_of_office.value
                lead.interest_updated_at = now
                lead.updated_at = now
            if verdict.return_date is not None:
                moved = feedback.push_past(state, campaign, lead, verdict.return_date, now)
                if moved is not None:
                    log.info(
                        "next step moved past an out-of-office",
                        lead_id=message.lead_id,
                        until=moved.isoformat(),
                    )
        return "auto_reply"

    emitted.add(
        tenant,
        "reply.received",
        {
            "reply_id": reply_id,
            "message_id": message.id,
            "campaign_id": message.campaign_id,
            "lead_id": message.lead_id,
            "inbox_id": inbox.id,
            "from_email": reply["from_email"] or message.to_email,
            "subject": reply["subject"] or None,
            "received_at": reply["received_at"],
        },
    )
    if lead is not None and lead.status in REPLIED_FROM:
        lead.status = LeadStatus.replied.value
        lead.updated_at = now
    stops = campaign is None or campaign.stop_on_reply
    if (
        state is not None
        and stops
        and state.status not in (SequenceStatus.stopped.value, SequenceStatus.finished.value)
    ):
        stop_sequence(state, StopReason.replied, now)
    await apply_label(
        session, tenant, lead, state, verdict.label, now, unsubscribe=verdict.unsubscribe, message=message
    )
    emitted.add(
        tenant,
        "reply.classified",
        {
            "reply_id": reply_id,
            "lead_id": message.lead_id,
            "campaign_id": message.campaign_id,
            "label": verdict.label,
            "confidence": verdict.confidence,
        },
    )
    return "reply"
