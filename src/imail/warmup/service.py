"""The rules of warmup: the pool, the ramp, what the reader does with warmup mail, auto-pause, and the figures
the inbox API, health_score and the sending planner read.

- **The pool** is every live, connected inbox whose warmup is active, across all workspaces of the deployment
  (starting warmup is the opt-in). Each sends its day's ramp of short notes to other members, over its own
  SMTP server, each recorded as a `warmup_messages` row (the sender's record) before it leaves.
- **Receiving** (the IMAP reader, imail.intake): a message carrying this deployment's marker is never matched
to a
  campaign, never a reply row, never an event. If it is one of the pool's emails to this inbox, the sender's
  row gets its placement (INBOX → `inbox`, the spam folder → `spam`) once; the reader then marks it read and
  important and moves it out of spam; and the first email of a thread is answered in thread, a `reply_rate`
  share of them.
- **Limits**: warmup and campaign sends share the inbox's daily counter (imail.sending), so together they
never
  pass its daily limit. With `slow_ramp`, campaign sends from a warming inbox are also capped by today's ramp
  target.
- **Auto-pause**: when, over the inbox's last `warmup_threshold_sends` warmup emails with a known outcome, the
spam
  share or the bounce share passes its threshold, warmup pauses (the reason kept on the inbox) and one
  `warmup.threshold_paused` fires.

Warmup is live-mode only: a test inbox may have warmup started (its state is kept), but never sends warmup
mail.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from imail.config import Settings
from imail.errors import InvalidField
from imail.events.service import record_event
from imail.inboxes.health import InboxStats
from imail.inboxes.monitor import report_connection_failure
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant, tenant_of
from imail.mail.bounces import Bounce
from imail.mail.parsing import InboundMessage
from imail.models import Inbox
from imail.models.inbox import InboxStatus, WarmupStatus
from imail.models.warmup import (
    InboxWarmup,
    Placement,
    WarmupDaily,
    WarmupKind,
    WarmupMessage,
    WarmupMessageStatus,
)
from imail.sending import counters as send_counters
from imail.warmup import content, ramp
from imail.warmup.repository import WarmupQueue, WarmupRepository

if TYPE_CHECKING:
    from imail.sending.service import Outcome

log = structlog.get_logger("imail.warmup")

INBOX_FOLDER = "INBOX"
SETTING_FIELDS = (
    "start_volume",
    "daily_increment",
    "ceiling",
    "weekdays_only",
    "enable_slow_ramp",
    "reply_rate",
)


def _model_default(name: str) -> Any:
    default = InboxWarmup.__table__.c[name].default
    if not isinstance(default, ScalarElementColumnDefault):
        raise TypeError(f"InboxWarmup.{name} has no constant default")
    return default.arg


DEFAULTS: dict[str, Any] = {name: _model_default(name) for name in SETTING_FIELDS}  # one source: the model's
HEALTH_DAYS = 7
DISCONNECTED_RECHECK = timedelta(minutes=15)
LONELY_RECHECK = timedelta(minutes=15)


def ramp_of(row: InboxWarmup | None) -> ramp.Ramp:
    values = {name: getattr(row, name) if row is not None else DEFAULTS[name] for name in SETTING_FIELDS}
    return ramp.Ramp(
        values["start_volume"], values["daily_increment"], values["ceiling"], values["weekdays_only"]
    )


@lru_cache(maxsize=8)
def _window(value: str) -> ramp.Window:
    return ramp.Window.parse(value)


def today_target(inbox: Inbox, row: InboxWarmup | None, day: date) -> int:
    """Warmup emails the inbox starts on `day` (0 unless warmup has been started)."""
    if inbox.warmup_started_at is None or inbox.warmup_status == WarmupStatus.off.value:
        return 0
    return ramp.target(ramp_of(row), inbox.warmup_started_at.date(), day, inbox.daily_limit)


# --- API side ---------------------------------------------------------------------------------------------


async def configure(
    session: AsyncSession, tenant: Tenant, inbox: Inbox, changes: dict[str, Any], now: datetime, **state: Any
) -> InboxWarmup:
    """Apply ramp settings (any of SETTING_FIELDS) and state columns to the inbox's warmup row, creating
    it."""
    repo = WarmupRepository(session, tenant)
    row = (await repo.settings_for([inbox.id])).get(inbox.id)
    merged = {
        name: changes.get(name, getattr(row, name) if row is not None else DEFAULTS[name])
        for name in SETTING_FIELDS
    }
    if merged["start_volume"] > merged["ceiling"]:
        field = "start_volume" if "start_volume" in changes else "ceiling"
        raise InvalidField(
            f"start_volume ({merged['start_volume']}) must not be above ceiling ({merged['ceiling']})",
            f"warmup.{field}",
        )
    if changes:
        state.setdefault("next_send_at", None)  # the worker works out the next slot under the new ramp
    return await repo.upsert(inbox.id, now, **merged, **state)


async def start(
    session: AsyncSession, tenant: Tenant, inbox: Inbox, changes: dict[str, Any], now: datetime
) -> None:
    """Called when warmup starts or resumes: the inbox joins the pool (live inboxes only send)."""
    await configure(session, tenant, inbox, changes, now, active=True, next_send_at=None)


async def pause(session: AsyncSession, tenant: Tenant, inbox: Inbox, reason: str, now: datetime) -> None:
    await configure(session, tenant, inbox, {}, now, active=False, last_pause_reason=reason, paused_at=now)


@dataclass
class Figures:
    stats: InboxStats  # for health_score
    warmup: dict[str, Any]  # the `warmup` object of the inbox API view


async def figures(
    session: AsyncSession, tenant: Tenant, inboxes: Sequence[Inbox], today: date
) -> dict[str, Figures]:
    """For each inbox: its 7-day health counts (campaign sends, bounces and replies from the analytics
    rollups; warmup placement from warmup_daily) and its warmup view; three queries whatever the count."""
    if not inboxes:
        return {}
    repo = WarmupRepository(session, tenant)
    ids = [inbox.id for inbox in inboxes]
    first = today - timedelta(days=HEALTH_DAYS - 1)
    rows = await repo.settings_for(ids)
    campaign = await repo.campaign_counts(ids, first, today)
    daily: dict[str, list[WarmupDaily]] = {i: [] for i in ids}
    for row in await repo.daily_between(ids, first, today):
        daily[row.inbox_id].append(row)
    found: dict[str, Figures] = {}
    for inbox in inboxes:
        days = daily[inbox.id]
        placed_inbox = sum(d.inbox for d in days)
        placed_spam = sum(d.spam for d in days)
        now_row = next((d for d in days if d.day == today), None)
        sent, bounced, replied = campaign.get(inbox.id, (0, 0, 0))
        setting = rows.get(inbox.id)
        placed = placed_inbox + placed_spam
        found[inbox.id] = Figures(
            stats=InboxStats(
                sent=sent, bounced=bounced, replied=replied, warmup_sent=placed, warmup_inbox=placed_inbox
            ),
            warmup={
                "status": inbox.warmup_status,
                "started_at": inbox.warmup_started_at,
                **{
                    name: getattr(setting, name) if setting is not None else DEFAULTS[name]
                    for name in SETTING_FIELDS
                },
                "today": {
                    "day": today,
                    "target": today_target(inbox, setting, today),
                    "sent": now_row.sent if now_row else 0,
                    "replies_sent": now_row.replies_sent if now_row else 0,
                },
                "placement_7d": {
                    "inbox": placed_inbox,
                    "spam": placed_spam,
                    "rate": round(placed_inbox / placed, 4) if placed else None,
                },
                "last_pause_reason": setting.last_pause_reason if setting is not None else None,
                "paused_at": setting.paused_at if setting is not None else None,
            },
        )
    return found


# --- the sending planner ----------------------------------------------------------------------------------


async def daily_counts(
    session: AsyncSession, tenant: Tenant, inbox_ids: Iterable[str], first: date, last: date
) -> list[WarmupDaily]:
    """The inboxes' warmup counters per day from `first` to `last` (the inbox report:
    imail.analytics.reports)."""
    return await WarmupRepository(session, tenant).daily_between(inbox_ids, first, last)


async def campaign_limits(session: AsyncSession, inboxes: Iterable[Inbox], day: date) -> dict[str, int]:
    """For warming inboxes with `enable_slow_ramp`: the most their shared daily counter may reach through
    campaign sends today — today's warmup sends plus today's ramp target (so campaign sends never pass the
    ramp). Called by the sending planner after it has locked the counters: the warmup worker writes
    warmup_daily under the same locks."""
    warming = [
        i for i in inboxes if i.warmup_status != WarmupStatus.off.value and i.warmup_started_at is not None
    ]
    if not warming:
        return {}
    queue = WarmupQueue(session)
    rows = await queue.settings_for(i.id for i in warming)
    slow = [i for i in warming if rows.get(i.id) is not None and rows[i.id].enable_slow_ramp]
    if not slow:
        return {}
    daily = await queue.daily_for((i.id for i in slow), day)
    limits = {}
    for inbox in slow:
        row = daily.get(inbox.id)
        warm = (row.sent + row.replies_sent) if row is not None else 0
        limits[inbox.id] = min(inbox.daily_limit, warm + today_target(inbox, rows[inbox.id], day))
    return limits


# --- the warmup worker ------------------------------------------------------------------------------------


@dataclass
class WarmupJob:
    """One warmup email claimed for sending: recorded as a warmup_messages row before this object exists."""

    warmup_id: str
    inbox: Inbox
    to_email: str
    data: bytes


def _next_day(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)


async def claim(
    session: AsyncSession, settings: Settings, now: datetime, rng: random.Random
) -> tuple[int, list[WarmupJob]]:
    """Lock warming inboxes with something due and turn it into jobs: queued replies first, then at most one
    new email per inbox (the next ramp slot), all within the inbox's daily limit. (inboxes examined, jobs)."""
    queue = WarmupQueue(session)
    rows = await queue.lock_due(now, settings.warmup_batch_inboxes)
    if not rows:
        return 0, []
    day = now.date()
    window = _window(settings.warmup_window)
    ids = [row.inbox_id for row in rows]
    inboxes = await queue.inboxes(ids)
    pool = await queue.pool()
    counters = await send_counters.lock_counters(session, ids, day)
    daily = await queue.lock_daily((i.id, i.workspace_id, i.livemode, day) for i in inboxes.values())
    replies = await queue.due_replies(ids, now)
    jobs: list[WarmupJob] = []
    for row in rows:
        inbox = inboxes.get(row.inbox_id)
        if inbox is None or inbox.warmup_status != WarmupStatus.active.value:
            row.active = False  # paused or turned off meanwhile: back in the pool when started again
            continue
        if inbox.status != InboxStatus.connected.value:
            row.next_send_at = (
                now + DISCONNECTED_RECHECK
            )  # the connection monitor reconnects it; nothing is lost
            continue
        counter, today = counters[inbox.id], daily[(inbox.id, day)]
        for reply in replies.get(inbox.id, []):
            if counter.sent >= inbox.daily_limit:
                reply.due_at = _next_day(now)
                continue
            jobs.append(_reply_job(inbox, reply, settings, rng, day))
            counter.sent += 1
            today.replies_sent += 1
        count = today_target(inbox, row, day)
        if (
            today.sent < min(count, ramp.due_by(window, now, count, inbox.id))
            and counter.sent < inbox.daily_limit
        ):
            recipients = [p for p in pool if p.id != inbox.id and p.email != inbox.email]
            if not recipients:
                row.next_send_at = now + LONELY_RECHECK  # alone in the pool: nobody to write to yet
                continue
            jobs.append(_first_job(session, inbox, rng.choice(recipients), settings, rng, now))
            counter.sent += 1
            today.sent += 1
        if counter.sent >= inbox.daily_limit and today.sent < count:
            row.next_send_at = _next_day(now)  # the day's limit is spent (campaigns and warmup together)
        else:
            row.next_send_at = ramp.next_wake(window, now, today.sent, count, inbox.id)
    await send_counters.save_counters(session, day, counters.values())
    await session.flush()
    return len(rows), jobs


def _first_job(
    session: AsyncSession, inbox: Inbox, recipient: Any, settings: Settings, rng: random.Random, now: datetime
) -> WarmupJob:
    composed = content.first_email(
        content.Party(inbox.email, inbox.name), content.Party(recipient.email, recipient.name), settings, rng
    )
    message = WarmupMessage(
        id=new_id("wrm"),
        workspace_id=inbox.workspace_id,
        livemode=inbox.livemode,
        inbox_id=inbox.id,
        recipient_inbox_id=recipient.id,
        from_email=inbox.email,
        to_email=recipient.email,
        kind=WarmupKind.first.value,
        subject=composed.subject,
        message_id_header=composed.message_id_header,
        status=WarmupMessageStatus.sending.value,
        replied=False,
        day=now.date(),
        created_at=now,
    )
    session.add(message)
    return WarmupJob(message.id, inbox, recipient.email, composed.data)


def _reply_job(
    inbox: Inbox, reply: WarmupMessage, settings: Settings, rng: random.Random, day: date
) -> WarmupJob:
    composed = content.reply_email(
        content.Party(inbox.email, inbox.name),
        content.Party(reply.to_email, ""),
        reply.subject,
        reply.in_reply_to or "",
        settings,
        rng,
    )
    reply.message_id_header = composed.message_id_header
    reply.status = WarmupMessageStatus.sending.value
    reply.day = day
    return WarmupJob(reply.id, inbox, reply.to_email, composed.data)


async def record_outcomes(
    session: AsyncSession, settings: Settings, outcomes: Sequence[Outcome], now: datetime
) -> None:
    """What SMTP said for each claimed warmup email. Sent (or handed over in doubt) counts; refused for the
    recipient is a bounce (judged for auto-pause); anything else gives the send back to the day's counters."""
    queue = WarmupQueue(session)
    messages = await queue.messages(o.message_id for o in outcomes)
    await queue.lock_settings(m.inbox_id for m in messages.values())
    daily = await queue.lock_daily((m.inbox_id, m.workspace_id, m.livemode, m.day) for m in messages.values())
    bounced: set[str] = set()
    for outcome in outcomes:
        message = messages.get(outcome.message_id)
        if message is None or message.status != WarmupMessageStatus.sending.value:
            continue
        counts = daily[(message.inbox_id, message.day)]
        if outcome.kind in ("sent", "in_doubt"):
            message.status = WarmupMessageStatus.sent.value
            message.sent_at = now
            continue
        message.error = outcome.detail[:2000] or None
        if outcome.kind == "bounced":
            message.status = WarmupMessageStatus.bounced.value
            message.sent_at = now
            counts.bounced += 1
            bounced.add(message.inbox_id)
            continue
        # Given back untried (its inbox's token could not be had): a reply waits in the queue for the inbox;
        # a first email's ramp slot is due again below.
        requeued_reply = outcome.kind == "requeue" and message.kind == WarmupKind.reply.value
        message.status = (WarmupMessageStatus.queued if requeued_reply else WarmupMessageStatus.failed).value
        await send_counters.adjust_counters(session, message.day, [message.inbox_id], -1)
        if message.kind == WarmupKind.first.value:
            counts.sent -= 1  # its ramp slot is due again: the next iteration retries with a fresh email
        else:
            counts.replies_sent -= 1
        if outcome.inbox_failure_side:
            await report_connection_failure(
                session, tenant_of(message), message.inbox_id, outcome.inbox_failure_side, outcome.detail
            )
    await session.flush()
    for inbox_id in sorted(bounced):
        await check_thresholds(session, settings, inbox_id, now)


async def check_thresholds(session: AsyncSession, settings: Settings, inbox_id: str, now: datetime) -> bool:
    """Pause the inbox's warmup if its last N warmup emails with a known outcome pass the spam or bounce
    threshold; True when this call paused it (and recorded the one `warmup.threshold_paused`)."""
    window = settings.warmup_threshold_sends
    recent = await WarmupQueue(session).recent_outcomes(inbox_id, window)
    if len(recent) < window:
        return False
    spam_rate = sum(1 for _, placement in recent if placement == Placement.spam.value) / window
    bounce_rate = sum(1 for status, _ in recent if status == WarmupMessageStatus.bounced.value) / window
    if spam_rate > settings.warmup_spam_threshold:
        reason = (
            f"spam placement {spam_rate:.0%} over the last {window} warmup emails passed the "
            f"{settings.warmup_spam_threshold:.0%} threshold"
        )
    elif bounce_rate > settings.warmup_bounce_threshold:
        reason = (
            f"bounce rate {bounce_rate:.0%} over the last {window} warmup emails passed the "
            f"{settings.warmup_bounce_threshold:.0%} threshold"
        )
    else:
        return False
    queue = WarmupQueue(session)
    if not await queue.pause_if_active(inbox_id):
        return False
    row = (await queue.lock_settings([inbox_id])).get(inbox_id)
    if row is not None:
        row.active, row.last_pause_reason, row.paused_at, row.updated_at = False, reason, now, now
    inbox = (await queue.inboxes([inbox_id]))[inbox_id]
    await session.flush()
    await record_event(
        session,
        tenant_of(inbox),
        "warmup.threshold_paused",
        {
            "inbox_id": inbox_id,
            "reason": reason,
            "spam_rate": round(spam_rate, 4),
            "bounce_rate": round(bounce_rate, 4),
        },
    )
    log.warning("warmup paused", inbox_id=inbox_id, reason=reason)
    return True


# --- the IMAP reader ----------------------------------------------------------------------------------------


def is_warmup(message: InboundMessage, marker: str) -> bool:
    """Whether a message carries this deployment's warmup marker (cheap: one header lookup)."""
    value = message.header(content.HEADER)
    return value is not None and value.strip() == marker


@dataclass(frozen=True)
class Filing:
    """What the reader does to a warmup message in its folder once the batch is committed."""

    uid: int
    move_to_inbox: bool  # it sits in the spam folder


async def receive(
    session: AsyncSession,
    settings: Settings,
    inbox: Inbox,
    folder: str,
    found: Sequence[tuple[int, InboundMessage]],
    now: datetime,
) -> list[Filing]:
    """Record the placement of the pool's warmup emails read from `inbox`'s `folder` (in the reader's batch
    transaction), queue replies, and say which messages to mark read and important and move out of spam."""
    spam = folder.upper() != INBOX_FOLDER
    queue = WarmupQueue(session)
    rows = await queue.by_headers(m.message_id for _, m in found if m.message_id)
    ours = [
        (uid, rows[m.message_id])
        for uid, m in found
        if m.message_id in rows and rows[m.message_id].recipient_inbox_id == inbox.id
    ]
    if not ours:
        return []
    parents = await queue.messages(
        r.parent_id for _, r in ours if r.kind == WarmupKind.reply.value and r.parent_id
    )
    senders = await queue.lock_settings({r.inbox_id for _, r in ours})
    keys = {(r.inbox_id, r.workspace_id, r.livemode, r.day) for _, r in ours}
    keys |= {(p.inbox_id, p.workspace_id, p.livemode, p.day) for p in parents.values()}
    daily = await queue.lock_daily(keys)
    filings: list[Filing] = []
    placed: set[str] = set()
    for uid, row in ours:
        if row.placement is not None:
            if spam:
                filings.append(
                    Filing(uid, True)
                )  # back in spam (or its move failed): out again, counted once
            continue
        row.placement = Placement.spam.value if spam else Placement.inbox.value
        row.placed_at = now
        counts = daily[(row.inbox_id, row.day)]
        if spam:
            counts.spam += 1
        else:
            counts.inbox += 1
        placed.add(row.inbox_id)
        filings.append(Filing(uid, spam))
        parent = parents.get(row.parent_id or "")
        if parent is not None and not parent.replied:
            parent.replied = True
            daily[(parent.inbox_id, parent.day)].replies_received += 1
        setting = senders.get(row.inbox_id)
        rate = setting.reply_rate if setting is not None else DEFAULTS["reply_rate"]
        if row.kind == WarmupKind.first.value and content.should_reply(row.message_id_header, rate):
            due = now + timedelta(seconds=settings.warmup_reply_delay)
            session.add(
                WarmupMessage(
                    id=new_id("wrm"),
                    workspace_id=inbox.workspace_id,
                    livemode=inbox.livemode,
                    inbox_id=inbox.id,
                    recipient_inbox_id=row.inbox_id,
                    from_email=inbox.email,
                    to_email=row.from_email,
                    kind=WarmupKind.reply.value,
                    parent_id=row.id,
                    subject=content.reply_subject(row.subject),
                    message_id_header=f"<pending-{new_id('wrm').lower()}@imail.invalid>",
                    in_reply_to=row.message_id_header,
                    status=WarmupMessageStatus.queued.value,
                    replied=False,
                    day=due.date(),
                    due_at=due,
                    created_at=now,
                )
            )
    await session.flush()
    for sender_id in sorted(placed):
        await check_thresholds(session, settings, sender_id, now)
    return filings


async def about_warmup(session: AsyncSession, reports: dict[int, str]) -> frozenset[int]:
    """Of the delivery reports read (position → the Message-ID each quotes), those about pool emails: they are
    warmup's, never matched to a campaign email."""
    ours = await WarmupQueue(session).known_headers(reports.values())
    return frozenset(index for index, header in reports.items() if header in ours)


async def record_reports(
    session: AsyncSession, settings: Settings, bounces: Sequence[Bounce], now: datetime
) -> None:
    """Delivery reports about pool emails (in the reader's batch transaction): a hard bounce counts as the
    sender's warmup bounce once, and is judged for auto-pause; soft bounces and delay or success notices
    change nothing."""
    hard = [b.original_message_id for b in bounces if b.kind == "hard" and b.original_message_id]
    queue = WarmupQueue(session)
    rows = await queue.by_headers(hard)
    fresh = [row for row in rows.values() if row.status != WarmupMessageStatus.bounced.value]
    if not fresh:
        return
    await queue.lock_settings(row.inbox_id for row in fresh)
    daily = await queue.lock_daily((r.inbox_id, r.workspace_id, r.livemode, r.day) for r in fresh)
    for row in fresh:
        row.status = WarmupMessageStatus.bounced.value
        daily[(row.inbox_id, row.day)].bounced += 1
    await session.flush()
    for sender_id in sorted({row.inbox_id for row in fresh}):
        await check_thresholds(session, settings, sender_id, now)
