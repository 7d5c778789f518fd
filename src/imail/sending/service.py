"""The rules of sending: enrolling leads, claiming due work within every limit, recording outcomes.

Claiming happens in one transaction: the due states are locked, every limit is checked against counters
locked in the same transaction, and each email is recorded (with its Message-ID) before any SMTP traffic.
Outcomes are recorded in a second transaction together with their events. An attempt left `sending` by a
crash is resolved from the inbox's Sent folder (see `resolve_in_flight`), never blindly resent.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

import structlog
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.events.service import batched_events, record_event
from imail.inboxes import backoff as inbox_backoff
from imail.inboxes.monitor import report_connection_failure
from imail.kit.clock import utcnow
from imail.kit.ids import new_id
from imail.kit.lease import Lease
from imail.kit.signing import Signer
from imail.kit.sql import HotPathRow
from imail.kit.tenancy import Tenant, tenant_of
from imail.mail.refusals import enhanced_status
from imail.models import Campaign, Inbox, Lead
from imail.models.campaign import CampaignStatus
from imail.models.lead import LeadStatus
from imail.models.sending import Message, MessageStatus, SequenceState, SequenceStatus, StopReason
from imail.sending import protection, simulation
from imail.sending.compose import Sender, Thread, TrackingUrls, compose
from imail.sending.effects import bounce_hard, event_ref, stop_sequence
from imail.sending.repository import ACCEPTED, IN_FLIGHT, SendQueue, SequenceRepository
from imail.sending.rotation import Bookings, NoInbox, Rotation, Shortage
from imail.sending.schedule import due_for_many, next_open
from imail.sending.sequence import END, Behaviour, after_branches, step_delay, window_for
from imail.suppressions import service as suppressions
from imail.tracking_domains import service as tracking_domains
from imail.warmup import service as warmup

log = structlog.get_logger("imail.sending")

NO_INBOX_RETRY = timedelta(minutes=15)
PAUSED_LEAD_RECHECK = timedelta(hours=1)
# How many claims' worth of waiting campaigns' other due first steps one claim books at most (_book_waiting).
WAITING_BATCHES = 10
SET_ASIDE_MARGIN = 4
IN_DOUBT_GRACE = timedelta(minutes=1)
PROGRESSED = (MessageStatus.sent.value, MessageStatus.unknown.value)
STOP_FOR_LEAD_STATUS = {
    LeadStatus.replied.value: StopReason.replied,
    LeadStatus.bounced.value: StopReason.bounced,
    LeadStatus.unsubscribed.value: StopReason.unsubscribed,
    LeadStatus.suppressed.value: StopReason.suppressed,
}


# --- enrolment (API side) -------------------------------------------------------------------------------


async def enroll(
    session: AsyncSession,
    tenant: Tenant,
    campaign: Campaign,
    leads: Sequence[tuple[str, str | None]],
    now: datetime | None = None,
) -> None:
    """Give new leads, as (lead id, timezone) pairs, their sequence state: step 1 due after its delay, inside
    the lead's send window."""
    if not leads or not campaign.steps:
        return
    now = now or utcnow()
    running = campaign.status == CampaignStatus.active.value
    due = due_for_many(
        now, step_delay(campaign.steps[0]), lambda zone: window_for(campaign.send_window, zone), leads
    )
    rows = [
        {
            "lead_id": lead_id,
            "campaign_id": campaign.id,
            "status": SequenceStatus.scheduled.value,
            "next_step": 0,
            "scheduled_at": due[lead_id],
            "due_at": due[lead_id] if running else None,
            "updated_at": now,
        }
        for lead_id, _ in leads
    ]
    await SequenceRepository(session, tenant).insert_new(rows)


async def campaign_running(session: AsyncSession, tenant: Tenant, campaign_id: str, running: bool) -> None:
    """Called when a campaign is resumed (True) or paused/archived (False)."""
    await SequenceRepository(session, tenant).set_campaign_running(campaign_id, running)


# --- claiming (worker side) -----------------------------------------------------------------------------


@dataclass
class Job:
    """One email claimed for sending: recorded as a Message row before this object exists."""

    message_id: str
    tenant: Tenant
    inbox: Inbox
    from_email: str
    to_email: str
    data: bytes
    message_id_header: str


@dataclass
class Claim:
    jobs: list[Job] = field(default_factory=list)
    examined: int = 0


# A campaign's skip_verification → the lead verification statuses it does not email.
SKIPPED_VERIFICATION = {"invalid": ("invalid",), "risky": ("invalid", "risky")}


def _finish(state: SequenceState | HotPathRow, lead: Lead | HotPathRow | None, now: datetime) -> None:
    state.status = SequenceStatus.finished.value
    state.due_at = None
    state.updated_at = now
    if lead is not None and lead.status == LeadStatus.active.value:
        lead.status = LeadStatus.completed.value


def _reschedule(state: SequenceState | HotPathRow, when: datetime, now: datetime) -> None:
    state.status = SequenceStatus.scheduled.value
    state.scheduled_at = when
    state.due_at = when
    state.updated_at = now


def _next_utc_day(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)


def _gap(inbox: Inbox, rng: random.Random) -> timedelta:
    """The inbox's sending gap plus a random extra wait (up to a quarter of the gap, at least 30 s when there
    is a gap), so its sends don't tick like a clock."""
    gap = timedelta(minutes=inbox.sending_gap_minutes)
    if not gap:
        return gap
    extra = max(30.0, gap.total_seconds() / 4)
    return gap + timedelta(seconds=rng.uniform(0, extra))


def _behaviour(message: HotPathRow | None) -> Behaviour:
    return Behaviour(opened=bool(message and message.opened_at), clicked=bool(message and message.clicked_at))


class Planner:
    """Turns locked due states into jobs, one transaction, every limit enforced on locked counters."""

    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        now: datetime,
        worker_id: str,
        rng: random.Random,
        bookings: Bookings | None = None,
    ):
        self.session = session
        self.settings = settings
        self.now = now
        self.worker_id = worker_id
        self.rng = rng
        self.bookings = bookings
        self.queue = SendQueue(session)
        self.urls = TrackingUrls(Signer(settings.resolved_secret_key()), settings.public_url)

    async def claim(self, limit: int) -> Claim:
        states = await self.queue.lock_due(self.now, limit)
        claim = Claim(examined=len(states))
        if not states:
            return claim
        campaigns = await self.queue.campaigns(s.campaign_id for s in states)
        self.campaign_ids = set(campaigns)
        campaign_inboxes = await self.queue.campaign_inboxes(campaigns)
        inbox_ids = {i for ids in campaign_inboxes.values() for i in ids} | {
            s.inbox_id for s in states if s.inbox_id
        }
        inboxes = await self.queue.inboxes(inbox_ids)
        self.day = self.now.date()
        self.counters = await self.queue.lock_counters([*campaigns, *inboxes], self.day)
        self.pacing = await self.queue.lock_pacing(inboxes)
        # Warmup sends share each inbox's counter; a slow-ramping warming inbox is also held to its ramp.
        limits = await warmup.campaign_limits(self.session, inboxes.values(), self.day)
        self.rotation = Rotation(self.now, inboxes, self.counters, self.pacing, limits, self.bookings)
        planned, set_aside = self._set_aside(states, campaigns, campaign_inboxes)
        leads = await self.queue.lead_rows(s.lead_id for s in planned)
        history = await self.queue.history(s.lead_id for s in planned)
        self.footers = await self.queue.footers(
            c.workspace_id for c in campaigns.values() if c.include_footer
        )
        self.hosts = await tracking_domains.workspace_hosts(
            self.session, (c.workspace_id for c in campaigns.values())
        )
        blocked = await self._suppressed(planned, leads)

        self.new_messages: list[dict[str, Any]] = []
        for state in planned:
            job = await self._plan(
                state,
                campaigns.get(state.campaign_id),
                leads.get(state.lead_id),
                history.get(state.lead_id, []),
                campaign_inboxes,
                blocked,
            )
            if job is not None:
                claim.jobs.append(job)
        waiting = self.rotation.waiting()
        for state in set_aside:
            if (state.campaign_id, state.livemode) in waiting:
                _reschedule(state, self.rotation.book(state.campaign_id, state.livemode), self.now)
            # else left due, unchanged: the next claim plans it
        await self.queue.save_claimed(
            self.new_messages, states, leads.values(), (m for previous in history.values() for m in previous)
        )
        await self.queue.save_counters(self.day, self.counters.values())
        await self.queue.save_pacing(self.pacing.values())
        claim.examined += await self._book_waiting(limit)
        await self.session.flush()
        return claim

    def _set_aside(
        self,
        states: list[HotPathRow],
        campaigns: dict[str, Campaign],
        campaign_inboxes: dict[str, list[str]],
    ) -> tuple[list[HotPathRow], list[HotPathRow]]:
        """(planned, set aside): a campaign's first steps beyond twice what its inboxes can take now (and
        SET_ASIDE_MARGIN, for leads that turn out stopped) are set aside without reading their leads, and
        booked a slot once the campaign's inboxes are found waiting out their gaps. A launch puts a batch of
        one campaign's leads in each claim: planned in full, each claim would read and write every lead to
        send a few, and the campaigns behind it would wait their turn for seconds."""
        room: dict[tuple[str, bool], int] = {}
        planned: list[HotPathRow] = []
        set_aside: list[HotPathRow] = []
        for state in states:
            campaign = campaigns.get(state.campaign_id)
            if state.inbox_id or campaign is None or campaign.status != CampaignStatus.active.value:
                planned.append(state)
                continue
            key = (campaign.id, state.livemode)
            if key not in room:
                ready, with_room = self.rotation.count(
                    campaign.id, campaign_inboxes.get(campaign.id, []), state.livemode
                )
                campaign_full = self.counters[campaign.id].sent >= campaign.daily_limit
                # Only a campaign that will wait out a gap is booked slots: plan all of the others' (their
                # states are rescheduled to the next day, or to a retry, by the rules of `_plan`).
                room[key] = len(states) if campaign_full or not with_room else 2 * ready + SET_ASIDE_MARGIN
            if room[key] > 0:
                room[key] -= 1
                planned.append(state)
            else:
                set_aside.append(state)
        return planned, set_aside

    async def _book_waiting(self, limit: int) -> int:
        """A campaign whose inboxes all wait out their gaps has other first steps due beyond this claim's
        share (a launch, or the backlog a long gap leaves): they would find the same and come back at once,
        each claim reading a batch of them to send none. They are booked slots now, up to WAITING_BATCHES
        claims' worth, without reading their leads: what is checked before a send is checked when the slot
        comes."""
        waiting = {group for group in self.rotation.waiting() if group[0] in self.campaign_ids}
        if not waiting:
            return 0
        rows = await self.queue.lock_waiting(
            sorted({campaign_id for campaign_id, _ in waiting}), self.now, limit * WAITING_BATCHES
        )
        due = [
            (row.lead_id, self.rotation.book(row.campaign_id, row.livemode))
            for row in rows
            if (row.campaign_id, row.livemode) in waiting
        ]
        await self.queue.reschedule(due, self.now)
        return len(due)

    async def _suppressed(
        self, states: list[HotPathRow], leads: dict[str, HotPathRow]
    ) -> set[tuple[Tenant, str]]:
        by_tenant: dict[Tenant, list[str]] = defaultdict(list)
        for state in states:
            lead = leads.get(state.lead_id)
            if lead is not None:
                by_tenant[tenant_of(state)].append(lead.email)
        blocked: set[tuple[Tenant, str]] = set()
        for tenant, emails in by_tenant.items():
            blocked |= {
                (tenant, email) for email in await suppressions.suppressed_among(self.session, tenant, emails)
            }
        return blocked

    async def _plan(
        self,
        state: HotPathRow,
        campaign: Campaign | None,
        lead: HotPathRow | None,
        previous: list[HotPathRow],
        campaign_inboxes: dict[str, list[str]],
        blocked: set[tuple[Tenant, str]],
    ) -> Job | None:
        now = self.now
        if campaign is None or lead is None or campaign.status != CampaignStatus.active.value:
            state.due_at = None  # resumed by campaign_running(); a deleted lead or campaign cascades away
            return None
        if lead.status == LeadStatus.paused.value:
            _reschedule(state, now + PAUSED_LEAD_RECHECK, now)
            return None
        replied_but_continuing = lead.status == LeadStatus.replied.value and not campaign.stop_on_reply
        if lead.status in STOP_FOR_LEAD_STATUS and not replied_but_continuing:
            stop_sequence(state, STOP_FOR_LEAD_STATUS[lead.status], now)
            return None
        if lead.status != LeadStatus.active.value and not replied_but_continuing:
            _finish(state, lead, now)
            return None
        if (tenant_of(state), lead.email) in blocked:
            lead.status = LeadStatus.suppressed.value
            stop_sequence(state, StopReason.suppressed, now)
            return None
        if lead.verification_status in SKIPPED_VERIFICATION.get(campaign.skip_verification, ()):
            stop_sequence(state, StopReason.verification, now)  # the lead's verification_status says why
            return None

        steps = campaign.steps
        # An `unknown` attempt (handed over when its worker died, never confirmed) moved its sequence on as if
        # sent: the documented rule of `resolve_stale`.
        sent = [m for m in previous if m.status in PROGRESSED]
        step_index = state.next_step
        if sent:
            last = sent[-1]
            step_index = after_branches(steps, last.step_index, _behaviour(last))
        if step_index == END or step_index >= len(steps):
            _finish(state, lead, now)
            return None

        window = window_for(campaign.send_window, lead.timezone)
        if not window.is_open(now):
            _reschedule(state, next_open(now, window, lead.id), now)
            return None
        if self.counters[campaign.id].sent >= campaign.daily_limit:
            _reschedule(state, next_open(_next_utc_day(now), window, lead.id), now)
            return None

        # Follow-ups go from the inbox that sent step 1.
        group, candidates = (
            (state.inbox_id, [state.inbox_id])
            if state.inbox_id
            else (campaign.id, campaign_inboxes.get(campaign.id, []))
        )
        inbox = self.rotation.choose(group, candidates, state.livemode)
        if isinstance(inbox, NoInbox):
            if inbox.shortage is Shortage.no_inbox:
                _reschedule(state, now + NO_INBOX_RETRY, now)
            elif inbox.shortage is Shortage.limits_reached:
                _reschedule(state, next_open(_next_utc_day(now), window, lead.id), now)
            else:
                assert inbox.ready_at is not None  # a running gap always says when it ends
                _reschedule(state, inbox.ready_at, now)
            return None

        existing = next((m for m in previous if m.step_index == step_index), None)
        if existing is not None and existing.status != MessageStatus.retry.value:
            # This step already has an attempt that is not retryable: never send it again.
            log.warning("step already attempted", lead_id=lead.id, step=step_index, status=existing.status)
            state.due_at = None
            return None

        message_id = existing.id if existing is not None else new_id("msg")
        thread = Thread(
            first_subject=sent[0].subject if sent else None,
            message_ids=tuple(m.message_id_header for m in sent),
        )
        composed = compose(
            message_id=message_id,
            step=steps[step_index],
            step_index=step_index,
            lead=lead,
            sender=Sender(inbox.email, inbox.name, inbox.signature or ""),
            thread=thread,
            track_opens=campaign.track_opens,
            track_clicks=campaign.track_clicks,
            text_only=campaign.text_only,
            # An inbox's verified tracking domain, else its workspace's, else IMAIL_PUBLIC_URL
            urls=self.urls.on(tracking_domains.verified_host(inbox) or self.hosts.get(campaign.workspace_id)),
            footer=self.footers.get(campaign.workspace_id) if campaign.include_footer else None,
        )
        lease = Lease.starting(self.worker_id, now, self.settings.sending_lease_seconds)
        attempt = {
            "inbox_id": inbox.id,
            "variant": composed.variant,
            "subject": composed.subject,
            "message_id_header": composed.message_id_header,
            "in_reply_to": thread.message_ids[-1] if thread.message_ids else None,
            "links": composed.links,
            "status": MessageStatus.sending.value,
            "lease_until": lease.until,
            "worker_id": lease.holder,
        }
        if existing is None:
            # A plain row, inserted with the batch's others in one statement: nothing reads it back in this
            # transaction, and it saves an ORM instance and its unit-of-work bookkeeping per email.
            self.new_messages.append(
                {
                    **attempt,
                    "id": message_id,
                    "workspace_id": state.workspace_id,
                    "livemode": state.livemode,
                    "campaign_id": campaign.id,
                    "lead_id": lead.id,
                    "step_index": step_index,
                    "to_email": lead.email,
                    "attempts": 1,
                    "created_at": now,
                }
            )
        else:
            for name, value in attempt.items():
                setattr(existing, name, value)
            existing.attempts = (existing.attempts or 0) + 1

        self.counters[campaign.id].sent += 1
        self.rotation.sent(inbox, now + _gap(inbox, self.rng))
        state.status = SequenceStatus.sending.value
        state.next_step = step_index
        state.due_at = None
        state.inbox_id = state.inbox_id or inbox.id
        state.updated_at = now
        return Job(
            message_id,
            tenant_of(state),
            inbox,
            inbox.email,
            lead.email,
            composed.data,
            composed.message_id_header,
        )


async def claim(
    session: AsyncSession,
    settings: Settings,
    worker_id: str,
    now: datetime | None = None,
    rng: random.Random | None = None,
    limit: int | None = None,
    bookings: Bookings | None = None,
) -> Claim:
    """Due sends planned and locked. `bookings`: what this worker's earlier claims promised the sends that
    wait for an inbox's gap (rotation.Bookings); without it, only this claim's promises are known."""
    planner = Planner(session, settings, now or utcnow(), worker_id, rng or random.Random(), bookings)
    return await planner.claim(limit or settings.sending_batch_size)


# --- outcomes -------------------------------------------------------------------------------------------


class AttemptTaken(Exception):
    """Raised before DATA when the attempt no longer owns its message: its lease ran out and the message was
    requeued (and perhaps claimed again). Nothing was handed over; the outcome ("taken") is not recorded."""


class OutcomeKind(StrEnum):
    """What became of one attempt (a str: comparing with the plain names keeps working)."""

    sent = "sent"  # the SMTP server accepted it (or test mode recorded it)
    retry = "retry"  # a temporary failure: due again after a backoff, until sending_max_attempts
    requeue = (
        "requeue"  # never handed to SMTP (its worker stopped first): back in the queue, no attempt counted
    )
    bounced = "bounced"  # refused for the recipient
    policy = "policy"  # refused on policy (5.7.x): the provider blocks the inbox; retried, the inbox paused
    throttled = (
        "throttled"  # the server asked the inbox to slow down (421, 4.7.x): it backs off, the email waits
    )
    soft_bounced = "soft_bounced"  # refused at RCPT for something that may pass (552 mailbox full): retried
    failed = "failed"  # refused for good, not the recipient's fault
    in_doubt = "in_doubt"  # the data went out and no answer came: settled by `resolve_stale`
    taken = "taken"  # its lease ran out and another attempt owns the message: nothing to record


@dataclass(frozen=True)
class Outcome:
    message_id: str
    kind: OutcomeKind
    code: int | None = None
    detail: str = ""
    inbox_failure_side: str | None = None  # set when the inbox itself failed (connection, login)
    category: str | None = None  # soft_bounced: the soft-bounce category (imail.mail.bounces)

    def __post_init__(self) -> None:
        # Built from plain names too (the transport's "sent", "retry"…): always held as the enum.
        object.__setattr__(self, "kind", OutcomeKind(self.kind))


def _sent_event(message: Message | Row) -> dict[str, Any]:
    """The `email.sent` payload, the same from the set-based and the one-by-one recording paths."""
    return {**event_ref(message), "smtp_message_id": message.message_id_header, "subject": message.subject}


async def record_outcomes(
    session: AsyncSession, settings: Settings, outcomes: Sequence[Outcome], now: datetime | None = None
) -> None:
    now = now or utcnow()
    queue = SendQueue(session)
    # Every message of the group locked at once, in id order (the resolver's order): the two recording paths
    # below then only re-take locks they hold.
    await queue.lock_messages(o.message_id for o in outcomes if o.kind != OutcomeKind.taken)
    async with batched_events(session):
        accepted = await _record_live_sends(queue, [o for o in outcomes if o.kind == OutcomeKind.sent], now)
        rest = [o for o in outcomes if o.kind != OutcomeKind.taken and o.message_id not in accepted]
        if rest:
            await _record_each(session, settings, queue, rest, now)


async def _record_live_sends(queue: SendQueue, outcomes: list[Outcome], now: datetime) -> set[str]:
    """Live emails the SMTP server accepted, recorded as sets of rows: the messages sent, their events, each
    state on to its next step (or finished). Returns the ids recorded; the others (test mode, settled
    meanwhile) are left to `_record_each`. The same effects as `apply_outcome` for these, at a few statements
    per batch."""
    messages = await queue.lock_live_in_flight(o.message_id for o in outcomes)
    if not messages:
        return set()
    by_id = {o.message_id: o for o in outcomes}
    await queue.settle_sent(
        now, [(m.id, by_id[m.id].code, by_id[m.id].detail[:2000] or None) for m in messages]
    )
    campaigns = await queue.campaign_sequences(m.campaign_id for m in messages)
    timezones = await queue.lead_timezones(m.lead_id for m in messages)
    sent: list[SentStep] = []
    for message in messages:
        await record_event(queue.session, tenant_of(message), "email.sent", _sent_event(message))
        campaign = campaigns.get(message.campaign_id)
        if campaign is not None and message.lead_id in timezones:
            sent.append(SentStep(campaign, message.lead_id, timezones[message.lead_id], message.step_index))
    after = after_send(sent, now)
    await queue.advance_sent(now, after.scheduled, after.finished)
    return {m.id for m in messages}


@dataclass(frozen=True)
class SentStep:
    """A lead whose step `step_index` of `campaign` (anything with steps, send_window and status) just went
    out."""

    campaign: Any
    lead_id: str
    timezone: str | None
    step_index: int


@dataclass
class AfterSend:
    scheduled: list[dict[str, Any]] = field(
        default_factory=list
    )  # {lead_id, next_step, scheduled_at, due_at}
    finished: list[str] = field(default_factory=list)  # lead ids


def after_send(sent: Sequence[SentStep], now: datetime) -> AfterSend:
    """THE rule for advancing a sequence, for both recording paths (sets of rows and one by one): after step i
    went out, step i + 1 is scheduled after its delay, inside the send window of the lead's timezone (its
    branch conditions are judged when it comes due), and due only while the campaign is active; after the last
    step the sequence is finished (and an active lead completed). Applied only to states still `sending`: one
    stopped meanwhile (a reply, an unsubscribe) stays stopped."""
    result = AfterSend()
    following: dict[tuple[int, int], list[SentStep]] = defaultdict(list)  # (campaign, next step) -> leads
    for item in sent:
        if item.step_index + 1 >= len(item.campaign.steps):
            result.finished.append(item.lead_id)
        else:
            following[(id(item.campaign), item.step_index + 1)].append(item)
    for (_, step), items in following.items():
        campaign = items[0].campaign
        running = campaign.status == CampaignStatus.active.value
        due = due_for_many(
            now,
            step_delay(campaign.steps[step]),
            partial(window_for, campaign.send_window),
            [(item.lead_id, item.timezone) for item in items],
        )
        result.scheduled += [
            {
                "lead_id": item.lead_id,
                "next_step": step,
                "scheduled_at": due[item.lead_id],
                "due_at": due[item.lead_id] if running else None,
            }
            for item in items
        ]
    return result


class GivenBack:
    """Sends given back to their day's campaign and inbox counters, written together at the end of a
    transaction in scope order (`SendQueue.adjust_counters`), the order claims lock counters in: never one
    message's pair, then the next message's, which could cross a claim's order and deadlock with it."""

    def __init__(self) -> None:
        self.counts: dict[tuple[date, str], int] = defaultdict(int)

    def add(self, day: date, scope_ids: Sequence[str]) -> None:
        for scope_id in scope_ids:
            self.counts[(day, scope_id)] += 1

    async def write(self, queue: SendQueue) -> None:
        for (day, scope_id), count in sorted(self.counts.items(), key=lambda item: (item[0][1], item[0][0])):
            await queue.adjust_counters(day, [scope_id], -count)
        self.counts.clear()


async def _record_each(
    session: AsyncSession, settings: Settings, queue: SendQueue, outcomes: list[Outcome], now: datetime
) -> None:
    """Every other outcome, one by one through the ORM: retries, bounces, failures, doubts, test-mode
    sends."""
    # Locked: an attempt the in-flight resolver is settling right now is seen settled once it commits.
    messages = await queue.messages((o.message_id for o in outcomes), lock=True)
    states = await queue.sequence_states(m.lead_id for m in messages.values())
    leads = await queue.leads(m.lead_id for m in messages.values())
    campaigns = await queue.campaigns(m.campaign_id for m in messages.values())
    given_back = GivenBack()
    for outcome in outcomes:
        message = messages.get(outcome.message_id)
        if message is None or message.status not in IN_FLIGHT:
            continue  # resolved meanwhile (in-flight resolution), or gone with its lead
        await apply_outcome(
            session,
            settings,
            message,
            states.get(message.lead_id),
            leads.get(message.lead_id),
            campaigns.get(message.campaign_id),
            outcome,
            now,
            given_back,
        )
    await session.flush()
    await given_back.write(queue)
    await _judge_bounces(session, settings, messages, outcomes, now)


async def _judge_bounces(
    session: AsyncSession,
    settings: Settings,
    messages: dict[str, Message],
    outcomes: list[Outcome],
    now: datetime,
) -> None:
    """Bounce protection for the inboxes whose emails SMTP just refused for their recipient."""
    bounced = {
        messages[o.message_id].inbox_id
        for o in outcomes
        if o.kind == OutcomeKind.bounced and o.message_id in messages
    }
    if bounced:
        await protection.judge_inboxes(session, settings, [i for i in bounced if i], now)


async def apply_outcome(
    session: AsyncSession,
    settings: Settings,
    message: Message,
    state: SequenceState | None,
    lead: Lead | None,
    campaign: Campaign | None,
    outcome: Outcome,
    now: datetime,
    given_back: GivenBack | None = None,
) -> None:
    """One outcome on its ORM rows. Sends given back to the counters go to `given_back` when given (written by
    the caller once, in lock order), else at once."""
    tenant = tenant_of(message)
    if outcome.kind == OutcomeKind.in_doubt:
        # The data went out but no answer came back: leave it `sending` for resolve_in_flight to settle from
        # the Sent folder once the inbox has had a minute to file it.
        message.lease_until = now + IN_DOUBT_GRACE
        message.smtp_response = outcome.detail[:2000] or None
        return
    claimed_on = (
        (message.lease_until - timedelta(seconds=settings.sending_lease_seconds)).date()
        if message.lease_until
        else now.date()
    )
    message.lease_until = None
    message.smtp_code = outcome.code
    message.smtp_response = outcome.detail[:2000] or None
    if outcome.kind == OutcomeKind.policy:
        await _policy_rejected(session, message, state, outcome, claimed_on, now, given_back)
        return
    if outcome.kind == OutcomeKind.sent:
        message.status = MessageStatus.sent.value
        message.sent_at = now
        await record_event(session, tenant, "email.sent", _sent_event(message))
        # As in _record_live_sends: a sequence stopped while its email was out (a reply) stays stopped.
        if (
            state is not None
            and lead is not None
            and campaign is not None
            and state.status == SequenceStatus.sending.value
        ):
            _advance(state, lead, campaign, message, now)
        if not message.livemode and lead is not None:
            await simulation.after_send(session, tenant, message, lead, state, campaign, now)
        return
    if outcome.kind == OutcomeKind.bounced:
        message.status = MessageStatus.bounced.value
        await bounce_hard(session, tenant, message, lead, state, now, str(outcome.code or ""), outcome.detail)
        return
    # Not handed over: give the send back to today's campaign and inbox limits.
    scopes = [i for i in (message.campaign_id, message.inbox_id) if i]
    if given_back is not None:
        given_back.add(claimed_on, scopes)
    else:
        await SendQueue(session).adjust_counters(claimed_on, scopes, -1)
    if outcome.inbox_failure_side and message.inbox_id:
        await report_connection_failure(
            session, tenant, message.inbox_id, outcome.inbox_failure_side, outcome.detail
        )
    if outcome.kind == OutcomeKind.throttled and message.inbox_id:
        # The server asked this inbox to slow down: the inbox backs off, and the email waits for it without
        # counting as an attempt (throttling says nothing about the email).
        until = await inbox_backoff.report_throttled(session, tenant, message.inbox_id, outcome.detail, now)
        message.status = MessageStatus.retry.value
        message.attempts = max(0, message.attempts - 1)
        if state is not None:
            _reschedule(state, until or now, now)
        return
    if outcome.kind == OutcomeKind.soft_bounced and await _soft_bounce_at_submission(
        session, settings, tenant, message, state, outcome, now
    ):
        return
    if outcome.kind == OutcomeKind.requeue:
        # Claimed but never handed to SMTP (its worker stopped first): nothing left the server, so it simply
        # goes back in the queue, without counting as an attempt.
        message.status = MessageStatus.retry.value
        message.attempts = max(0, message.attempts - 1)
        if state is not None:
            _reschedule(state, now, now)
        return
    if outcome.kind == OutcomeKind.retry and message.attempts < settings.sending_max_attempts:
        message.status = MessageStatus.retry.value
        if state is not None:
            backoff = timedelta(seconds=settings.sending_retry_seconds * 2 ** (message.attempts - 1))
            _reschedule(state, now + backoff, now)
        return
    message.status = MessageStatus.failed.value
    if state is not None:
        stop_sequence(state, StopReason.failed, now)


async def _policy_rejected(
    session: AsyncSession,
    message: Message,
    state: SequenceState | None,
    outcome: Outcome,
    claimed_on: Any,
    now: datetime,
    given_back: GivenBack | None,
) -> None:
    """The inbox's SMTP server refused the send on policy (5.7.x): its provider is blocking it, not this
    recipient. Nothing is suppressed and the attempt does not count: the email waits in the queue (another
    inbox of the campaign may take a first step; a follow-up waits for its thread's inbox), and the inbox
    pauses."""
    scopes = [i for i in (message.campaign_id, message.inbox_id) if i]
    if given_back is not None:
        given_back.add(claimed_on, scopes)
    else:
        await SendQueue(session).adjust_counters(claimed_on, scopes, -1)
    message.status = MessageStatus.retry.value
    message.attempts = max(0, message.attempts - 1)
    if state is not None:
        if message.step_index == 0:
            state.inbox_id = None  # no email of this thread went out: any inbox may start it
        _reschedule(state, now, now)
    await protection.policy_rejected(session, tenant_of(message), message.inbox_id, outcome.detail, now)


async def _soft_bounce_at_submission(
    session: AsyncSession,
    settings: Settings,
    tenant: Tenant,
    message: Message,
    state: SequenceState | None,
    outcome: Outcome,
    now: datetime,
) -> bool:
    """A recipient refused at RCPT for something that may pass (552 mailbox full): `email.bounced.soft`, and
    the email is retried like a deferral while attempts are left (True); False: it fails."""
    will_retry = message.attempts < settings.sending_max_attempts
    await record_event(
        session,
        tenant,
        "email.bounced.soft",
        {
            **event_ref(message),
            "category": outcome.category or "unknown",
            "status_code": enhanced_status(outcome.detail.removeprefix(str(outcome.code or "")))
            or (str(outcome.code) if outcome.code else None),
            "diagnostic": outcome.detail[:500] or None,
            "will_retry": will_retry,
        },
    )
    if not will_retry:
        return False
    message.status = MessageStatus.retry.value
    if state is not None:
        wait = timedelta(seconds=settings.sending_retry_seconds * 2 ** (message.attempts - 1))
        _reschedule(state, now + wait, now)
    return True


def _advance(state: SequenceState, lead: Lead, campaign: Campaign, message: Message, now: datetime) -> None:
    """`after_send` for one ORM state and lead."""
    after = after_send([SentStep(campaign, lead.id, lead.timezone, message.step_index)], now)
    state.last_sent_at = now
    if after.finished:
        _finish(state, lead, now)
        return
    [row] = after.scheduled
    state.next_step = row["next_step"]
    _reschedule(state, row["scheduled_at"], now)
    state.due_at = row["due_at"]


# --- in-flight resolution -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadClaims:
    """Attempts in flight whose worker is not seen by heartbeat: they wait for `resolve_in_flight` to take
    them."""

    count: int
    oldest_claimed_at: datetime | None


async def dead_claims(session: AsyncSession, settings: Settings, now: datetime) -> DeadClaims:
    count, oldest = await SendQueue(session).dead_claims(
        now,
        timedelta(seconds=settings.sending_lease_seconds),
        timedelta(seconds=settings.worker_dead_seconds),
    )
    return DeadClaims(count, oldest)


async def resolve_stale(
    session: AsyncSession,
    settings: Settings,
    stale: Sequence[Message],
    found_in_sent: dict[str, bool],
    now: datetime,
) -> int:
    """Settle attempts whose worker died (or outlived its lease) before recording their outcome, by every
    means there is:

    - never handed to SMTP (`sending`): back in the queue, at once;
    - handed and marked accepted (`smtp_code` 250, written as the answer came): sent;
    - handed, not marked: sent if the inbox's Sent folder holds the Message-ID (`found_in_sent`, by message
    id);
      when the folder was read and does not hold it, `unknown`. Never resent. The rule for an unknown attempt:
      the customer is told (an `email.sent` event with `confirmed: false`), and the sequence moves on as if it
      had been sent (the next step after its delay, or finished), so the lead is never left looking `active`
      behind a stopped sequence. A delivery report or bounce that comes later still settles the message.
    Handed attempts missing from `found_in_sent` are left for the caller (the folder could not be read
    now)."""
    queue = SendQueue(session)
    states = await queue.sequence_states(m.lead_id for m in stale)
    leads = await queue.leads(m.lead_id for m in stale)
    campaigns = await queue.campaigns(m.campaign_id for m in stale)
    given_back = GivenBack()
    async with batched_events(session):
        for message in stale:
            state, lead, campaign = (
                states.get(message.lead_id),
                leads.get(message.lead_id),
                campaigns.get(message.campaign_id),
            )
            outcome: Outcome | None = None
            if message.status == MessageStatus.sending.value:
                outcome = Outcome(
                    message.id, OutcomeKind.requeue, detail="requeued: its worker stopped before sending"
                )
            elif message.smtp_code == ACCEPTED:
                outcome = Outcome(
                    message.id,
                    OutcomeKind.sent,
                    code=ACCEPTED,
                    detail="accepted by the SMTP server; recorded after its worker stopped",
                )
            elif message.id not in found_in_sent:
                continue  # the Sent folder could not be read now; the caller pushed the lease back
            elif found_in_sent[message.id]:
                outcome = Outcome(
                    message.id, OutcomeKind.sent, detail="found in the Sent folder after its worker stopped"
                )
            if outcome is not None:
                await apply_outcome(
                    session, settings, message, state, lead, campaign, outcome, now, given_back
                )
                continue
            await _settle_unknown(session, message, state, lead, campaign, now)
        await session.flush()
        await given_back.write(queue)
    return len(stale)


UNKNOWN_DETAIL = (
    "handed to SMTP when its worker stopped, with no answer recorded and not in the Sent folder; not resent"
)


def confirm_unknown(message: Message, detail: str, now: datetime) -> bool:
    """A later proof that an `unknown` attempt arrived (a positive delivery report): it becomes `sent` (its
    sequence already moved on, its `email.sent` already told). True if it was unknown."""
    if message.status != MessageStatus.unknown.value:
        return False
    message.status = MessageStatus.sent.value
    message.sent_at = message.sent_at or now
    message.smtp_response = f"{UNKNOWN_DETAIL}; since confirmed by {detail}"[:2000]
    return True


async def _settle_unknown(
    session: AsyncSession,
    message: Message,
    state: SequenceState | None,
    lead: Lead | None,
    campaign: Campaign | None,
    now: datetime,
) -> None:
    """An attempt whose delivery nothing can confirm: `unknown`, told, and its sequence moved on
    (resolve_stale)."""
    message.status = MessageStatus.unknown.value
    message.lease_until = None
    message.smtp_response = UNKNOWN_DETAIL
    await record_event(
        session,
        tenant_of(message),
        "email.sent",
        {**_sent_event(message), "confirmed": False, "detail": UNKNOWN_DETAIL},
    )
    if (
        state is not None
        and lead is not None
        and campaign is not None
        and state.status == SequenceStatus.sending.value
    ):
        _advance(state, lead, campaign, message, now)
    log.warning(
        "send outcome unknown: sequence moved on",
        message_id=message.id,
        lead_id=message.lead_id,
        inbox_id=message.inbox_id,
    )
