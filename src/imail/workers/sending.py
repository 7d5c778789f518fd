"""Sending workers: deliver due sequence steps, and settle attempts a crash left in doubt."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aioimaplib
import structlog

from imail.inboxes import sent_folder
from imail.inboxes.connection import CredentialsUnavailable, endpoints_for
from imail.kit.coalesce import Coalescer
from imail.mail import imap
from imail.mail.endpoint import MailConnectionError
from imail.models.sending import Message, MessageStatus
from imail.sending import repository, service
from imail.sending.repository import SendQueue
from imail.sending.service import Job, Outcome
from imail.sending.transport import SmtpPool
from imail.workers.context import WorkerContext

log = structlog.get_logger("imail.workers.sending")

RESOLVE_BATCH = 50
# How long a before-DATA mark waits for others to share its statement: 1 ms on each email's way out, against
# a third fewer mark statements (13 → 19 marks per statement in bench/sending.py), each a round trip and a commit.
MARK_LINGER = 0.001
UNREACHABLE_RECHECK = timedelta(minutes=5)


def smtp_pool(ctx: WorkerContext) -> SmtpPool:
    pool = ctx.extra.get("smtp_pool")
    if pool is None:
        pool = ctx.extra["smtp_pool"] = SmtpPool(
            ctx.settings.mail_timeout,
            ctx.settings.mail_ca_file,
            ctx.settings.sending_idle_seconds,
            allow_private=ctx.settings.mail_allow_private,
        )
    return pool


async def _send_for_inbox(ctx: WorkerContext, pool: SmtpPool, jobs: list[Job]) -> list[Outcome]:
    inbox = jobs[0].inbox
    if not inbox.livemode:  # test mode never opens an SMTP connection
        return [Outcome(job.message_id, "sent", detail="test mode: recorded, not sent") for job in jobs]
    try:
        endpoints = await endpoints_for(inbox, ctx.settings, ctx.http)
    except CredentialsUnavailable as exc:
        return [
            Outcome(job.message_id, "retry", detail=exc.detail, inbox_failure_side="smtp") for job in jobs
        ]
    outcomes: list[Outcome] = []
    release: str | None = None
    async with pool.lock(inbox.id):
        for job in jobs:
            if ctx.stopping.is_set():
                release = "released unsent: its worker is stopping"
            if release:
                outcomes.append(Outcome(job.message_id, "requeue", detail=release))
                continue
            outcome = await pool.send(
                inbox.id,
                endpoints.smtp,
                job.message_id,
                job.from_email,
                job.to_email,
                job.data,
                before_data=_marker(ctx, job),
            )
            outcomes.append(outcome)
            if outcome.kind == "in_doubt" or outcome.inbox_failure_side:
                # A server that stalls or drops us would cost a full timeout per remaining message, one after
                # another; give them back untried instead (a later claim tries again, the monitor checks the inbox).
                release = f"released unsent: the inbox's SMTP server failed on an earlier message ({outcome.detail[:200]})"
    return outcomes


async def _file_in_sent(ctx: WorkerContext, jobs: list[Job], outcomes: list[Outcome]) -> None:
    """Put what one inbox just sent in its Sent folder where the provider does not (imail.inboxes.sent_folder):
    after the first sends of an `auto` inbox, look for them there first and remember what that showed. Runs
    after the outcomes are recorded; a failure here is logged, never the send's: the message went out."""
    sent = {outcome.message_id for outcome in outcomes if outcome.kind == "sent"}
    jobs = [job for job in jobs if job.message_id in sent]
    if not jobs or not jobs[0].inbox.livemode:
        return
    inbox = jobs[0].inbox
    append = sent_folder.must_append(inbox)
    if append is None:
        found = await _look_in_sent(ctx, inbox, [job.message_id_header for job in jobs])
        if found is None:
            return  # can't tell now: the next sends look again
        filed = bool(found)
        async with ctx.database.transaction() as session:
            await sent_folder.record_filing(session, jobs[0].tenant, inbox.id, filed)
        inbox.sent_filed_by_provider = filed  # this worker's copy, until the next claim reads the row
        jobs = [job for job in jobs if job.message_id_header not in found]
        append = not filed
    if not append or not jobs:
        return
    try:
        endpoints = await endpoints_for(inbox, ctx.settings, ctx.http)
        await imap.append_to_sent(
            endpoints.imap,
            [job.data for job in jobs],
            timeout=ctx.settings.mail_timeout,
            ca_file=ctx.settings.mail_ca_file,
            allow_private=ctx.settings.mail_allow_private,
        )
    except (
        CredentialsUnavailable,
        MailConnectionError,
        imap.ImapCommandError,
        aioimaplib.AioImapException,
        OSError,
        TimeoutError,
    ) as exc:
        log.warning("appending to the sent folder failed", inbox_id=inbox.id, error=str(exc)[:200])


def _handover_marks(ctx: WorkerContext) -> Coalescer[tuple[str, str], bool]:
    """Records that an attempt's DATA is about to go out, in a transaction of its own committed before the DATA
    command: after a crash an attempt not so marked is known never to have left, and one so marked is looked for
    in the Sent folder. Sends on many connections reach this point together, so their marks are written
    together, one UPDATE per round trip."""
    marks = ctx.extra.get("handover_marks")
    if marks is None:

        async def mark(attempts: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
            owned = await repository.mark_handed(ctx.database, attempts)
            return {attempt: attempt[0] in owned for attempt in attempts}

        marks = ctx.extra["handover_marks"] = Coalescer(mark, linger=MARK_LINGER)
    return marks


def _marker(ctx: WorkerContext, job: Job) -> Callable[[], Awaitable[None]]:
    """The before-DATA mark of one job. An attempt whose lease ran out and was requeued meanwhile is not marked,
    and not sent (AttemptTaken)."""
    marks = _handover_marks(ctx)

    async def mark() -> None:
        if not await marks((job.message_id, job.message_id_header)):
            raise service.AttemptTaken(job.message_id)

    return mark


async def deliver(
    ctx: WorkerContext, jobs: list[Job], record: Callable[[list[Outcome]], Awaitable[None]] | None = None
) -> list[Outcome]:
    """Every inbox's jobs on its own connection, many inboxes at once (bounded). With `record`, each inbox's
    outcomes are recorded as soon as that inbox is done, so a slow server never holds back the others'."""
    pool = smtp_pool(ctx)
    by_inbox: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_inbox[job.inbox.id].append(job)
    limit = asyncio.Semaphore(ctx.settings.sending_smtp_concurrency)

    async def run(group: list[Job]) -> list[Outcome]:
        async with limit:
            outcomes = await _send_for_inbox(ctx, pool, group)
        if record is not None:
            await record(outcomes)
        await _file_in_sent(ctx, group, outcomes)
        return outcomes

    results = await asyncio.gather(*(run(group) for group in by_inbox.values()), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [outcome for group in results for outcome in group]  # type: ignore[union-attr]


def _process_lock(ctx: WorkerContext, name: str) -> asyncio.Lock:
    lock = ctx.extra.get(name)
    if lock is None:
        lock = ctx.extra[name] = asyncio.Lock()
    return lock


async def send_due(ctx: WorkerContext) -> int:
    # One claim at a time per process (the registry runs two of these loops): SQLite has no SKIP LOCKED, so two
    # claims at once would take the same states; on PostgreSQL a campaign's claims queue on its counter row anyway.
    # What the loops overlap is one's claim with the other's delivery.
    async with _process_lock(ctx, "claiming"), ctx.database.transaction() as session:
        claim = await service.claim(session, ctx.settings, ctx.instance_id, now=ctx.clock())
    if claim.jobs:
        # One recording transaction at a time per process (both loops), so it never contends with itself for
        # campaign and rollup rows; inboxes finishing while one is being recorded wait together and go in the next
        # one, so a batch takes a few recording transactions instead of one per inbox.
        recording = _process_lock(ctx, "recording")
        waiting: list[Outcome] = []

        async def record(outcomes: list[Outcome]) -> None:
            waiting.extend(outcomes)
            async with recording:
                if not waiting:
                    return  # recorded with an earlier caller's
                taken = waiting.copy()
                waiting.clear()
                async with ctx.database.transaction() as session:
                    await service.record_outcomes(session, ctx.settings, taken, now=ctx.clock())

        await deliver(ctx, claim.jobs, record)
    else:
        await smtp_pool(ctx).close_idle()
    return claim.examined


async def _look_in_sent(ctx: WorkerContext, inbox, headers: list[str]) -> set[str] | None:
    """The headers found in the inbox's Sent folder, or None when it can't be checked now."""
    try:
        endpoints = await endpoints_for(inbox, ctx.settings, ctx.http)
        return await imap.find_in_sent(
            endpoints.imap,
            headers,
            timeout=ctx.settings.mail_timeout,
            ca_file=ctx.settings.mail_ca_file,
            allow_private=ctx.settings.mail_allow_private,
        )
    except (
        CredentialsUnavailable,
        MailConnectionError,
        imap.ImapCommandError,
        aioimaplib.AioImapException,
        OSError,
        TimeoutError,
    ) as exc:
        # Any failure to read the folder means "can't tell yet": the caller pushes these leases back, so one
        # misbehaving server never stalls resolution for everyone else.
        log.warning("sent folder unreachable", inbox_id=inbox.id, error=str(exc)[:200])
        return None


async def resolve_in_flight(ctx: WorkerContext) -> int:
    """Attempts whose lease ran out: their worker died after recording them. See service.resolve_stale. Those
    never handed to SMTP are requeued at once; for those handed over the inboxes' Sent folders are asked with no
    transaction open (IMAP can take up to the mail timeout per inbox; a new lease keeps other workers off them
    meanwhile), and each is settled after, if still ours."""
    now = ctx.clock()
    looking = now + timedelta(seconds=ctx.settings.sending_lease_seconds)
    async with ctx.database.transaction() as session:
        queue = SendQueue(session)
        stale = await queue.lock_stale_in_flight(now, RESOLVE_BATCH)
        if not stale:
            return 0
        handed = [m for m in stale if m.status == MessageStatus.handed.value]
        inboxes = await queue.inboxes(m.inbox_id for m in handed if m.inbox_id)
        await service.resolve_stale(
            session, ctx.settings, stale, {}, now
        )  # the handed ones wait for the look
        for message in handed:
            message.lease_until = looking
    by_inbox: dict[str | None, list[Message]] = defaultdict(list)
    for message in handed:
        by_inbox[message.inbox_id].append(message)
    found: dict[str, bool] = {}
    unreachable: set[str] = set()
    for inbox_id, messages in by_inbox.items():
        inbox = inboxes.get(inbox_id) if inbox_id else None
        in_sent = (
            None
            if inbox is None
            else await _look_in_sent(ctx, inbox, [m.message_id_header for m in messages])
        )
        if in_sent is None:
            unreachable.update(m.id for m in messages)
            continue
        found.update({m.id: m.message_id_header in in_sent for m in messages})
    if handed:
        async with ctx.database.transaction() as session:
            current = await SendQueue(session).messages([m.id for m in handed], lock=True)
            ours = [
                m
                for m in current.values()
                if m.status == MessageStatus.handed.value and m.lease_until == looking
            ]
            for message in ours:
                if message.id in unreachable:
                    message.lease_until = now + UNREACHABLE_RECHECK
            await service.resolve_stale(session, ctx.settings, ours, found, now)
    return len(stale)
