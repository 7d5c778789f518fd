"""The inbound worker: read due inboxes over IMAP (see imail.intake.reader), a bounded batch per iteration.

A read that fails is counted on the inbox (imail.inboxes.monitor.report_read_failure, which disconnects it at
`inbound_read_failure_limit`) and tried again after a wait that doubles; a read that works clears the
count."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

import structlog

from imail.config import Settings
from imail.inboxes.connection import keep_rotated_token
from imail.inboxes.monitor import report_read_failure, report_read_success, report_token_failure
from imail.intake.reader import InboundPool, InboxResult, ReadFailure, sync_inbox
from imail.intake.repository import ReaderQueue
from imail.kit.lease import Lease
from imail.models import Inbox
from imail.workers.context import WorkerContext

log = structlog.get_logger("imail.workers.inbound")

POOL_KEY = "inbound.pool"
PRUNE_EVERY = 30.0  # seconds between checks that this worker still owns the inboxes it keeps connections to


def inbound_pool(ctx: WorkerContext) -> InboundPool:
    pool = ctx.extra.get(POOL_KEY)
    if pool is None:
        pool = ctx.extra[POOL_KEY] = InboundPool(ctx.settings)
    return pool


async def _prune(ctx: WorkerContext, pool: InboundPool) -> None:
    if not pool.connections or time.monotonic() - pool.last_pruned < PRUNE_EVERY:
        return
    pool.last_pruned = time.monotonic()
    async with ctx.database.transaction() as session:
        owners = await ReaderQueue(session).owners(pool.connections)
    await pool.prune(owners, ctx.instance_id)


async def _claim(ctx: WorkerContext, pool: InboundPool, limit: int) -> list[Inbox]:
    """Up to `limit` due inboxes (more if IDLE announced more), leased to this worker."""
    settings = ctx.settings
    now = ctx.clock()
    pushed = pool.take_pushed()
    async with ctx.database.transaction() as session:
        queue = ReaderQueue(session)
        lease = Lease.starting(ctx.instance_id, now, settings.inbound_lease_seconds)
        dead_after = timedelta(seconds=settings.worker_dead_seconds)
        due = await queue.due_inboxes(now, limit, lease.until - now, dead_after, lease.holder)
        listed = {inbox.id for inbox in due}
        announced = await queue.readable(
            pushed - listed
        )  # IDLE said new mail: read now, whatever the schedule
        candidates = (announced + due)[: max(limit, len(announced))]
        claimed = await queue.claim(
            [inbox.id for inbox in candidates], now, lease.until, lease.holder, dead_after
        )
    # Announced but being read by another worker right now: try again next iteration.
    pool.pushed |= {inbox.id for inbox in announced if inbox.id not in claimed}
    return [inbox for inbox in candidates if inbox.id in claimed]


def retry_wait(settings: Settings, failures: int) -> float:
    """Seconds before an inbox whose last `failures` reads failed is read again: the polling interval,
    doubling, up to the time an IDLE-ing inbox waits between full reads (a failing inbox is not left alone
    longer than that)."""
    longest = max(settings.inbound_idle_recheck, settings.inbound_poll_interval)
    return min(settings.inbound_poll_interval * 2 ** min(max(failures - 1, 0), 30), longest)


def _unlogged_crash(inbox: Inbox, failure: ReadFailure) -> str | None:
    """The fingerprint of a crash of imail's own code whose traceback was not logged for this inbox yet (the
    row keeps the last one logged, so neither a retry nor another worker logs it again)."""
    fingerprint = failure.fingerprint
    return fingerprint if fingerprint is not None and fingerprint != inbox.read_crash_logged else None


def _log_failure(inbox: Inbox, failure: ReadFailure, failures: int, limit: int, first_seen: bool) -> None:
    """One line per failed read; a crash of imail's own code with its traceback when first seen for the
    inbox."""
    fields = {"inbox_id": inbox.id, "failures": failures, "limit": limit}
    if failure.crash is None:
        log.warning("inbox read failed", error=failure.reason, **fields)
    elif first_seen:
        log.error("inbox read crashed", exc_info=failure.crash, **fields)
    else:
        log.error(
            "inbox read crashed again (its traceback was logged before)",
            error=f"{type(failure.crash).__name__}: {failure.crash}"[:1000],
            **fields,
        )


async def _read(
    ctx: WorkerContext, pool: InboundPool, inbox: Inbox, none_waiting: Callable[[], bool]
) -> InboxResult:
    """Read one inbox. Its pass goes on past `inbound_max_messages` (a backlog's read-ahead not started again
    every pass) while `none_waiting()` says no inbox waits for a slot, up to `inbound_pass_seconds`;
    otherwise the inboxes waiting for a slot wait at most a pass."""
    started, longest = ctx.clock(), timedelta(seconds=ctx.settings.inbound_pass_seconds)

    def go_on() -> bool:
        return not ctx.stopping.is_set() and none_waiting() and ctx.clock() - started < longest

    try:
        return await sync_inbox(ctx, pool, inbox, go_on)
    except Exception as exc:  # noqa: BLE001 - a bug (or the database): logged with its failure count
        return InboxResult.failed(ReadFailure.from_crash(exc))


async def _read_all(
    ctx: WorkerContext, pool: InboundPool, inboxes: list[Inbox], width: int
) -> list[InboxResult]:
    """Read `inboxes` (extended in place with the inboxes claimed meanwhile), `width` at a time, and settle
    them; their results in the same order. Reads are settled together when the iteration ends, or, while a
    read goes on past its pass budget, as they finish (so that they can be claimed again, for the mail IDLE
    announces, without waiting for the long read)."""
    waiting = deque(inboxes)
    first = set(range(len(inboxes)))  # positions of the first claim not finished yet
    running: dict[asyncio.Task, int] = {}
    results: dict[int, InboxResult] = {}
    finished: list[int] = []  # positions read and not settled yet
    past_budget: set[int] = set()  # positions of running reads that went on past their pass budget
    stirred = pool.stirred

    def none_waiting_for(position: int) -> Callable[[], bool]:
        def none_waiting() -> bool:
            # Other inboxes are claimed into free slots only while a read of the first claim goes on.
            if bool(first) and len(running) + len(waiting) < width:
                past_budget.add(position)
                return True
            return False

        return none_waiting

    try:
        while waiting or running:
            while waiting and len(running) < width:
                position = len(inboxes) - len(waiting)
                task = asyncio.create_task(_read(ctx, pool, waiting.popleft(), none_waiting_for(position)))
                running[task] = position
            nudge = asyncio.create_task(stirred.wait())
            done, _ = await asyncio.wait({*running, nudge}, return_when=asyncio.FIRST_COMPLETED)
            nudge.cancel()
            # Decided before this wake's finished reads are counted, so a first-claim read that ended right
            # after stirring still lets the worker claim.
            refill = bool(first) and stirred.is_set() and not ctx.stopping.is_set()
            stirred.clear()
            for task in done:
                if task is not nudge:
                    position = running.pop(task)
                    results[position] = task.result()
                    first.discard(position)
                    past_budget.discard(position)
                    finished.append(position)
            if finished and past_budget:
                await _settle(
                    ctx, pool, [(inboxes[p], results[p]) for p in finished], _reading(inboxes, running)
                )
                finished.clear()
            free = width - len(running) - len(waiting)
            if refill and free > 0:
                more = await _claim(ctx, pool, free)
                inboxes.extend(more)
                waiting.extend(more)
    finally:
        for task in running:  # only when this worker itself failed (a read's own failure is its result)
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    await _settle(ctx, pool, [(inboxes[p], results[p]) for p in finished], set())
    return [results[position] for position in range(len(inboxes))]


def _reading(inboxes: list[Inbox], running: dict[asyncio.Task, int]) -> set[str]:
    return {inboxes[position].id for position in running.values()}


async def _settle(
    ctx: WorkerContext, pool: InboundPool, settled: list[tuple[Inbox, InboxResult]], reading: set[str]
) -> None:
    """Release inboxes read, with the time of their next read (at once with more waiting, after the IDLE
    recheck when IDLE-ing, else the polling interval, or the wait a failure earns), in one transaction; and
    put the IDLE connections closed to make room back to polling, except those of inboxes still `reading`
    (settled later, with what they were evicted)."""
    settings = ctx.settings
    now = ctx.clock()
    limit = settings.inbound_read_failure_limit
    failures: dict[str, int] = {}
    first_seen: dict[str, str | None] = {}
    evicted = pool.evicted - reading  # IDLE connections closed to make room (maybe by these reads)
    if not settled and not evicted:
        return
    pool.evicted -= evicted
    async with ctx.database.transaction() as session:
        queue = ReaderQueue(session)
        await queue.back_to_polling(
            evicted - {inbox.id for inbox, _ in settled},
            ctx.instance_id,
            now + timedelta(seconds=settings.inbound_poll_interval),
        )
        for inbox, result in settled:
            await keep_rotated_token(session, inbox, result.rotated_token)
            result.idle = result.idle and inbox.id not in evicted
            if result.token_failure is not None:
                # Not a failed read: the inbox is disconnected (no read until a new consent) or waits out
                # its token endpoint's backoff.
                retry_at = await report_token_failure(session, inbox, result.token_failure, now)
                wait = (
                    max((retry_at - now).total_seconds(), 0.0)
                    if retry_at is not None
                    else settings.inbound_poll_interval
                )
            elif (failure := result.failure) is not None:
                first_seen[inbox.id] = _unlogged_crash(inbox, failure)
                failures[inbox.id] = await report_read_failure(
                    session,
                    inbox,
                    failure.reason,
                    now,
                    limit=limit,
                    login=failure.login,
                    crash=first_seen[inbox.id],
                )
                wait = retry_wait(settings, failures[inbox.id])
            else:
                if result.error is None and (inbox.read_failures or inbox.last_read_error):
                    await report_read_success(session, inbox)
                if result.more:
                    wait = 0.0
                elif result.idle:
                    wait = settings.inbound_idle_recheck
                else:
                    wait = settings.inbound_poll_interval
            await queue.release(
                inbox.id, ctx.instance_id, now + timedelta(seconds=wait), result.idle, now, result.error
            )
    for inbox, result in settled:
        if result.failure is not None:
            _log_failure(inbox, result.failure, failures[inbox.id], limit, first_seen[inbox.id] is not None)
        if result.processed:
            log.info("inbox read", inbox_id=inbox.id, messages=result.processed, **dict(result.outcomes))


async def read_inboxes(ctx: WorkerContext) -> int:
    """One iteration: claim due inboxes (and those IDLE announced mail for), read them (bounded concurrency
    and messages per inbox), release them with their next read time. Returns messages read plus inboxes with
    more waiting, plus one if the first claim was full.

    A backlog is read a pass (`inbound_max_messages`) at a time, which can take long, and while a slot is free
    a pass goes on past that (up to `inbound_pass_seconds`); the iteration lasts as long as its longest read,
    but the other slots do not wait for it: while a read of the first claim goes on, each batch committed (by
    any read) and each IDLE announcement lets the worker claim due inboxes into the free slots, and while a
    pass goes on past its budget the reads that end are settled at once. An inbox with a backlog holds one
    slot; the other inboxes' replies are read meanwhile."""
    settings = ctx.settings
    pool = inbound_pool(ctx)
    await _prune(ctx, pool)
    pool.stirred.clear()  # what stirred it before this claim is claimed now
    inboxes = await _claim(ctx, pool, settings.inbound_batch_inboxes)
    if not inboxes:
        return 0
    # A full claim means more inboxes may be due (a start, a dead worker's inboxes taken over): the next
    # iteration runs at once instead of after the loop's interval, which would pace a takeover of hundreds of
    # inboxes at one batch a second.
    full = len(inboxes) >= settings.inbound_batch_inboxes
    width = max(1, min(settings.inbound_concurrency, settings.inbound_max_connections))
    results = await _read_all(ctx, pool, inboxes, width)
    return sum(r.processed for r in results) + sum(1 for r in results if r.more) + int(full)
