"""Sending workers: deliver due sequence steps, and settle attempts a crash left in doubt."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import aioimaplib
import structlog

from imail.inboxes import sent_folder
from imail.inboxes.connection import CredentialsUnavailable, Endpoints, endpoints_for, keep_rotated_token
from imail.inboxes.monitor import report_token_failure
from imail.kit.coalesce import Coalescer
from imail.kit.lease import Lease
from imail.mail import imap
from imail.mail.endpoint import MailConnectionError
from imail.models import Inbox
from imail.models.sending import Message, MessageStatus
from imail.sending import repository, service
from imail.sending.repository import SendQueue
from imail.sending.rotation import Bookings
from imail.sending.service import Job, Outcome, OutcomeKind
from imail.sending.transport import SmtpPool
from imail.workers.context import WorkerContext

log = structlog.get_logger("imail.workers.sending")

RESOLVE_BATCH = 50
# How long a before-DATA mark waits for others to share its statement: a short wait on each email's way out
# buys fewer mark statements (bench/sending.py counts marks per statement), each a round trip and a commit.
MARK_LINGER = 0.001
# Outcomes are recorded in groups of this many per inbox, or this many seconds after the group's first.
RECORD_EVERY = 10
RECORD_AFTER = 1.0
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


class Recorder:
    """Hands an inbox's outcomes to `record` as they come, in small groups (every RECORD_EVERY outcomes, or
    once RECORD_AFTER seconds have passed since the group's first), without holding up the inbox's next send:
    a crash leaves unrecorded only a group's worth, and those accepted are marked so (`mark_accepted`)
    anyway."""

    def __init__(self, record: Callable[[list[Outcome]], Coroutine[Any, Any, None]] | None):
        self.record = record
        self.group: list[Outcome] = []
        self.started = 0.0
        self.tasks: list[asyncio.Task[None]] = []
        self.outcomes: list[Outcome] = []

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self.record is None:
            return
        if not self.group:
            self.started = time.monotonic()
        self.group.append(outcome)
        if len(self.group) >= RECORD_EVERY or time.monotonic() - self.started >= RECORD_AFTER:
            self.flush()

    def flush(self) -> None:
        if self.record is not None and self.group:
            self.tasks.append(asyncio.create_task(self.record(self.group)))
            self.group = []

    async def finish(self) -> list[Outcome]:
        self.flush()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return self.outcomes


async def _send_for_inbox(ctx: WorkerContext, pool: SmtpPool, jobs: list[Job], recorder: Recorder) -> None:
    inbox = jobs[0].inbox
    if not inbox.livemode:  # test mode never opens an SMTP connection
        for job in jobs:
            recorder.add(Outcome(job.message_id, OutcomeKind.sent, detail="test mode: recorded, not sent"))
        return
    try:
        endpoints = await login_endpoints(ctx, inbox)
    except CredentialsUnavailable as exc:
        for outcome in await without_credentials(ctx, inbox, [job.message_id for job in jobs], exc):
            recorder.add(outcome)
        return
    release: str | None = None
    async with pool.lock(inbox.id):
        for job in jobs:
            if ctx.stopping.is_set():
                release = "released unsent: its worker is stopping"
            if release:
                recorder.add(Outcome(job.message_id, OutcomeKind.requeue, detail=release))
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
            if outcome.kind == OutcomeKind.sent:
                await _accepted_marks(ctx)(job.message_id)
            recorder.add(outcome)
            if (
                outcome.kind in (OutcomeKind.in_doubt, OutcomeKind.policy, OutcomeKind.throttled)
                or outcome.inbox_failure_side
            ):
                # A server that stalls or drops us would cost a full timeout per remaining message, one after
                # another; give them back untried instead (a later claim tries again, the monitor checks the
                # inbox).
                release = (
                    "released unsent: the inbox's SMTP server failed on an earlier message "
                    f"({outcome.detail[:200]})"
                )


async def login_endpoints(ctx: WorkerContext, inbox: Inbox) -> Endpoints:
    """The inbox's logins (`endpoints_for`), keeping a refresh token the provider rotated meanwhile."""
    endpoints = await endpoints_for(inbox, ctx.settings, ctx.http, ctx.clock())
    if endpoints.rotated_token:
        async with ctx.database.transaction() as session:
            await keep_rotated_token(session, inbox, endpoints.rotated_token)
    return endpoints


async def without_credentials(
    ctx: WorkerContext, inbox: Inbox, attempt_ids: list[str], exc: CredentialsUnavailable
) -> list[Outcome]:
    """What becomes of an inbox's claimed emails (campaign or warmup) when it has nothing to log in with. An
    OAuth token that could not be had disconnects the inbox or makes it back off, reported once for the
    inbox; its emails go back to the queue untried, not counted as attempts. Anything else is retried, and
    the monitor asked to check the inbox."""
    if not exc.judged_at_once:
        return [
            Outcome(attempt_id, OutcomeKind.retry, detail=exc.detail, inbox_failure_side="smtp")
            for attempt_id in attempt_ids
        ]
    async with ctx.database.transaction() as session:
        await report_token_failure(session, inbox, exc, ctx.clock())
    return [
        Outcome(attempt_id, OutcomeKind.requeue, detail=f"released unsent: {exc.detail}")
        for attempt_id in attempt_ids
    ]


def _accepted_marks(ctx: WorkerContext) -> Coalescer[str, None]:
    """Records, as each 250 comes, that the server accepted the attempt (`repository.mark_accepted`), many
    sends' marks in one statement. A failed mark is logged, not raised: the email is out, and its outcome is
    still recorded with the rest; only a crash before that falls back to the Sent folder."""
    marks = ctx.extra.get("accepted_marks")
    if marks is None:

        async def mark(ids: list[str]) -> dict[str, None]:
            try:
                await repository.mark_accepted(ctx.database, ids)
            except Exception as exc:  # noqa: BLE001 - see above
                log.warning("accepted marks not written", count=len(ids), error=str(exc)[:200])
            return dict.fromkeys(ids)

        marks = ctx.extra["accepted_marks"] = Coalescer(mark, linger=MARK_LINGER)
    return marks


# What reaching an inbox's Sent folder can fail with: logged and tried another time, never raised.
SENT_FOLDER_ERRORS = (
    CredentialsUnavailable,
    MailConnectionError,
    imap.ImapCommandError,
    aioimaplib.AioImapException,
    OSError,
    TimeoutError,
)


async def _file_in_sent(ctx: WorkerContext, jobs: list[Job], outcomes: list[Outcome]) -> None:
    """Put what one inbox just sent in its Sent folder where the provider does not
    (imail.inboxes.sent_folder): after the first sends of an `auto` inbox, look for them there first and
    remember what that showed. Runs after the outcomes are recorded; a failure here is logged, never the
    send's: the message went out."""
    sent = {outcome.message_id for outcome in outcomes if outcome.kind == "sent"}
    jobs = [job for job in jobs if job.message_id in sent]
    if not jobs or not jobs[0].inbox.livemode:
        return
    # Each inbox here is an IMAP login of its own; after a batch over hundreds of inboxes, opening them all
    # at once is a fork storm on the provider's side (Dovecot runs a process per session) and a TLS handshake
    # storm on ours.
    async with _sent_folder_sessions(ctx):
        await _file_inbox_in_sent(ctx, jobs)


def _sent_folder_sessions(ctx: WorkerContext) -> asyncio.Semaphore:
    sessions = ctx.extra.get("sent_folder_sessions")
    if sessions is None:
        sessions = ctx.extra["sent_folder_sessions"] = asyncio.Semaphore(
            ctx.settings.sending_sent_folder_concurrency
        )
    return sessions


async def _file_inbox_in_sent(ctx: WorkerContext, jobs: list[Job]) -> None:
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
        endpoints = await login_endpoints(ctx, inbox)
        await imap.append_to_sent(
            endpoints.imap,
            [job.data for job in jobs],
            timeout=ctx.settings.mail_timeout,
            ca_file=ctx.settings.mail_ca_file,
            allow_private=ctx.settings.mail_allow_private,
        )
    except SENT_FOLDER_ERRORS as exc:
        log.warning("appending to the sent folder failed", inbox_id=inbox.id, error=str(exc)[:200])


def _handover_marks(ctx: WorkerContext) -> Coalescer[tuple[str, str], bool]:
    """Records that an attempt's DATA is about to go out, in a transaction of its own committed before the
    DATA command: after a crash an attempt not so marked is known never to have left, and one so marked is
    looked for in the Sent folder. Sends on many connections reach this point together, so their marks are
    written together, one UPDATE per round trip."""
    marks = ctx.extra.get("handover_marks")
    if marks is None:

        async def mark(attempts: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
            owned = await repository.mark_handed(ctx.database, attempts)
            return {attempt: attempt[0] in owned for attempt in attempts}

        marks = ctx.extra["handover_marks"] = Coalescer(mark, linger=MARK_LINGER)
    return marks


def _marker(ctx: WorkerContext, job: Job) -> Callable[[], Awaitable[None]]:
    """The before-DATA mark of one job. An attempt whose lease ran out and was requeued meanwhile is not
    marked, and not sent (AttemptTaken)."""
    marks = _handover_marks(ctx)

    async def mark() -> None:
        if not await marks((job.message_id, job.message_id_header)):
            raise service.AttemptTaken(job.message_id)

    return mark


async def deliver(
    ctx: WorkerContext,
    jobs: list[Job],
    record: Callable[[list[Outcome]], Coroutine[Any, Any, None]] | None = None,
) -> list[Outcome]:
    """Every inbox's jobs on its own connection, many inboxes at once (bounded). With `record`, outcomes are
    recorded as they come, in small groups (`Recorder`), so neither a slow server nor a crash holds back the
    others'."""
    pool = smtp_pool(ctx)
    by_inbox: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_inbox[job.inbox.id].append(job)
    limit = asyncio.Semaphore(ctx.settings.sending_smtp_concurrency)

    async def run(group: list[Job]) -> list[Outcome]:
        recorder = Recorder(record)
        try:
            async with limit:
                await _send_for_inbox(ctx, pool, group, recorder)
        finally:
            outcomes = await recorder.finish()
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


def _bookings(ctx: WorkerContext) -> Bookings:
    """This process's promises to sends waiting out an inbox's gap, from one claim to the next."""
    bookings = ctx.extra.get("bookings")
    if bookings is None:
        bookings = ctx.extra["bookings"] = Bookings()
    return bookings


async def send_due(ctx: WorkerContext) -> int:
    # One claim at a time per process (the registry runs two of these loops): SQLite has no SKIP LOCKED, so
    # two claims at once would take the same states; on PostgreSQL a campaign's claims queue on its counter
    # row anyway. What the loops overlap is one's claim with the other's delivery.
    async with _process_lock(ctx, "claiming"), ctx.database.transaction() as session:
        claim = await service.claim(
            session, ctx.settings, ctx.instance_id, now=ctx.clock(), bookings=_bookings(ctx)
        )
    if claim.jobs:
        # One recording transaction at a time per process (both loops), so it never contends with itself for
        # campaign and rollup rows; inboxes finishing while one is being recorded wait together and go in the
        # next one, so a batch takes a few recording transactions instead of one per inbox.
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
        endpoints = await login_endpoints(ctx, inbox)
        return await imap.find_in_sent(
            endpoints.imap,
            headers,
            timeout=ctx.settings.mail_timeout,
            ca_file=ctx.settings.mail_ca_file,
            allow_private=ctx.settings.mail_allow_private,
        )
    except SENT_FOLDER_ERRORS as exc:
        # Any failure to read the folder means "can't tell yet": the caller pushes these leases back, so one
        # misbehaving server never stalls resolution for everyone else.
        log.warning("sent folder unreachable", inbox_id=inbox.id, error=str(exc)[:200])
        return None


async def resolve_in_flight(ctx: WorkerContext) -> int:
    """Attempts whose worker is gone: not seen by heartbeat for IMAIL_WORKER_DEAD_SECONDS (a crash costs
    seconds), or whose lease ran out. See service.resolve_stale. Those never handed to SMTP are requeued at
    once, those the server accepted are recorded sent; for the others the inboxes' Sent folders are asked with
    no transaction open (IMAP can take up to the mail timeout per inbox). Meanwhile this worker holds them
    (its id and a new lease, so another resolver takes them only if this one dies too), and each is settled
    after, if still ours."""
    now = ctx.clock()
    lease = timedelta(seconds=ctx.settings.sending_lease_seconds)
    looking = Lease.starting(ctx.instance_id, now, ctx.settings.sending_lease_seconds)
    async with ctx.database.transaction() as session:
        queue = SendQueue(session)
        stale = await queue.lock_stale_in_flight(
            now, RESOLVE_BATCH, lease, timedelta(seconds=ctx.settings.worker_dead_seconds)
        )
        if not stale:
            return 0
        to_look = [
            m for m in stale if m.status == MessageStatus.handed.value and m.smtp_code != repository.ACCEPTED
        ]
        inboxes = await queue.inboxes(m.inbox_id for m in to_look if m.inbox_id)
        await service.resolve_stale(session, ctx.settings, stale, {}, now)  # those to look up wait
        for message in to_look:
            message.lease_until, message.worker_id = looking.until, looking.holder
    by_inbox: dict[str | None, list[Message]] = defaultdict(list)
    for message in to_look:
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
    if to_look:
        async with ctx.database.transaction() as session:
            current = await SendQueue(session).messages([m.id for m in to_look], lock=True)
            ours = [
                m
                for m in current.values()
                if m.status == MessageStatus.handed.value
                and (m.worker_id, m.lease_until) == (looking.holder, looking.until)
            ]
            for message in ours:
                if message.id in unreachable:
                    message.lease_until = now + UNREACHABLE_RECHECK
            await service.resolve_stale(session, ctx.settings, ours, found, now)
    return len(stale)
