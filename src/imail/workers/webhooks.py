"""The webhook delivery worker: claim due deliveries under a lease, send them concurrently, record it all."""

from __future__ import annotations

import asyncio
import math
import random
import secrets
from collections import Counter, deque
from datetime import datetime, timedelta

import structlog
from ulid import ULID

from imail.kit import crypto
from imail.kit.lease import Lease
from imail.webhooks.delivery import GONE_REASON, Attempt, DeliveryOutcome, judge, send
from imail.webhooks.repository import DeliveryJob, DeliveryLogPurge, DeliveryQueue
from imail.webhooks.signing import open_secret
from imail.webhooks.urls import AddressGuard
from imail.workers.context import WorkerContext

log = structlog.get_logger("imail.webhooks")

GUARD_KEY = "webhooks.address_guard"
PURGE_CHUNK = 5000
# Seconds the requests in flight may all go unanswered before the batch opens one more concurrent request.
RAMP_AFTER = 0.02
UNREADABLE_SECRET = "not sent: no configured IMAIL_SECRET_KEY opens the endpoint's signing secret"


def lease_seconds(ctx: WorkerContext) -> float:
    """Long enough for a whole batch to be sent (`webhooks_concurrency` at a time, each bounded by the
    timeout) and recorded, even if every request times out."""
    settings = ctx.settings
    rounds = math.ceil(settings.webhooks_batch_size / settings.webhooks_concurrency)
    return max(settings.webhooks_lease, rounds * settings.webhooks_timeout + 5.0)


class _Deferred:
    """Not attempted: the endpoint didn't answer another delivery of the batch, so don't queue behind it."""


DEFERRED = _Deferred()


async def _attempt(
    ctx: WorkerContext, job: DeliveryJob, guard: AddressGuard | None, silent: set[str]
) -> tuple[Attempt | _Deferred, datetime]:
    if job.webhook_id in silent:
        return DEFERRED, ctx.clock()
    try:
        secret = open_secret(ctx.settings, job.secret_encrypted)
    except crypto.InvalidToken:
        return Attempt(None, UNREADABLE_SECRET, None, None, 0), ctx.clock()
    # With the guard, its pinned client: the address checked is the address connected to.
    http = ctx.http if guard is None else guard.http
    attempt = await send(http, job, secret, ctx.settings.webhooks_timeout, guard)
    if attempt.status_code is None:
        # Timed out, refused or blocked: the endpoint's other deliveries in this batch would most likely wait
        # the same way, holding slots healthy endpoints could use. They are retried shortly instead.
        silent.add(job.webhook_id)
    return attempt, ctx.clock()


async def send_batch(
    ctx: WorkerContext, jobs: list[DeliveryJob], guard: AddressGuard | None
) -> list[tuple[Attempt | _Deferred | None, datetime]]:
    """Send a batch, one endpoint after another in turn, opening one more concurrent request (up to
    `webhooks_concurrency`) whenever those in flight go unanswered for RAMP_AFTER.

    Fast endpoints are thus served one request after another, which costs the least CPU (httpx's pool does
    work per open connection on every request), while slow ones soon get the whole width. An endpoint gets a
    second request in flight only once it has answered one in this batch, so one that hangs holds one slot
    until its timeout, after which its remaining deliveries are deferred (see `_attempt`)."""
    results: list[tuple[Attempt | _Deferred | None, datetime] | None] = [None] * len(jobs)
    silent: set[str] = set()
    answered: set[str] = set()
    outstanding: Counter[str] = Counter()
    pending = deque(_round_robin(jobs))
    in_flight: set[asyncio.Task] = set()

    async def run(index: int, job: DeliveryJob) -> None:
        try:
            results[index] = outcome = await _attempt(ctx, job, guard, silent)
            if isinstance(outcome[0], Attempt) and outcome[0].status_code is not None:
                answered.add(job.webhook_id)
        finally:
            outstanding[job.webhook_id] -= 1

    def next_ready() -> int | None:
        for _ in range(len(pending)):
            index = pending.popleft()
            webhook_id = jobs[index].webhook_id
            if webhook_id in silent or webhook_id in answered or not outstanding[webhook_id]:
                return index
            pending.append(index)  # its endpoint hasn't answered yet: later (each endpoint keeps its order)
        return None

    width = ctx.settings.webhooks_concurrency
    try:
        while pending:
            index = next_ready()
            if index is None or len(in_flight) >= width:
                if index is not None:
                    pending.appendleft(index)
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            job = jobs[index]
            if job.endpoint_status != "enabled":
                results[index] = (None, ctx.clock())
                continue
            if in_flight:
                _, in_flight = await asyncio.wait(
                    in_flight, timeout=RAMP_AFTER, return_when=asyncio.FIRST_COMPLETED
                )
            outstanding[job.webhook_id] += 1
            in_flight.add(asyncio.create_task(run(index, job)))
        if in_flight:
            await asyncio.gather(*in_flight)
    finally:
        for task in in_flight:
            task.cancel()
    return results  # type: ignore[return-value]


def _round_robin(jobs: list[DeliveryJob]) -> list[int]:
    """Job positions taking one per endpoint in turn (each endpoint's own order kept), so an endpoint that
    hangs ties up one slot at a time rather than all of them before its first timeout marks it silent."""
    by_endpoint: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        by_endpoint.setdefault(job.webhook_id, []).append(index)
    queues = list(by_endpoint.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


async def deliver_webhooks(ctx: WorkerContext) -> int:
    """One iteration: claim up to `webhooks_batch_size` due deliveries, send them (see `send_batch`), record
    the outcomes in one transaction. Returns how many were claimed (>0: run again at once)."""
    settings = ctx.settings
    now = ctx.clock()
    lease = Lease.starting(f"{ctx.instance_id}#{secrets.token_hex(4)}", now, lease_seconds(ctx))
    token = lease.holder
    async with ctx.database.transaction() as session:
        jobs = await DeliveryQueue(session).claim(now, settings.webhooks_batch_size, lease.until, token)
    if not jobs:
        return 0
    guard = None if settings.webhooks_allow_private else ctx.extra.setdefault(GUARD_KEY, AddressGuard())
    attempts = await send_batch(ctx, jobs, guard)
    judged: list[DeliveryJob] = []
    outcomes: list[DeliveryOutcome] = []
    released: list[dict] = []
    for job, (attempt, at) in zip(jobs, attempts, strict=True):
        if attempt is None:  # the endpoint was disabled or deleted since the delivery was owed
            error = f"not attempted: the endpoint is {job.endpoint_status}"
            released.append(_released(job, token, at, "failed", None, error))
        elif isinstance(attempt, _Deferred):
            jitter = 1 + settings.webhooks_retry_jitter * (2 * random.random() - 1)
            due = at + timedelta(seconds=settings.webhooks_retry_schedule[0] * jitter)
            released.append(_released(job, token, at, "pending", due, None))
        else:
            judged.append(job)
            outcomes.append(judge(job, attempt, at, settings, token))
    await record_outcomes(ctx, judged, outcomes, released)
    return len(jobs)


def _released(
    job: DeliveryJob, token: str, at: datetime, status: str, due: datetime | None, error: str | None
) -> dict:
    return {
        "b_id": job.delivery_id,
        "b_token": token,
        "b_status": status,
        "b_next": due,
        "b_error": error,
        "b_now": at,
    }


async def record_outcomes(
    ctx: WorkerContext,
    jobs: list[DeliveryJob],
    outcomes: list[DeliveryOutcome],
    released: list[dict] | None = None,
) -> None:
    """One transaction: the endpoints' health (only where it changes), then the deliveries."""
    settings = ctx.settings
    now = ctx.clock()
    cutoff = now - timedelta(seconds=settings.webhooks_disable_after)
    succeeded: set[str] = set()
    failed: set[str] = set()
    gone: set[str] = set()
    failing_since: dict[str, datetime | None] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        failing_since[job.webhook_id] = job.endpoint_failing_since
        if outcome.succeeded:
            succeeded.add(job.webhook_id)
        elif outcome.gone:
            gone.add(job.webhook_id)
        elif outcome.row["b_inc"]:
            failed.add(job.webhook_id)
    failed -= succeeded | gone
    recovered = sorted(w for w in succeeded if failing_since[w] is not None)
    starting = sorted(w for w in failed if failing_since[w] is None)
    overdue = sorted(w for w in failed if (since := failing_since[w]) is not None and since <= cutoff)
    async with ctx.database.transaction() as session:
        queue = DeliveryQueue(session)
        # Endpoint rows first, each statement in id order, so concurrent workers lock them in the same order.
        await queue.endpoints_recovered(recovered)
        await queue.endpoints_failing(starting, now)
        disabled = await queue.disable(sorted(gone), GONE_REASON, now)
        if overdue:
            hours = settings.webhooks_disable_after / 3600
            reason = (
                f"Disabled automatically: every delivery attempt failed for {hours:g} hours. "
                "Fix the endpoint, then re-enable it with POST /v1/webhooks/{id}/enable."
            )
            disabled += await queue.disable(overdue, reason, now, failing_before=cutoff)
        recorded = await queue.record([o.row for o in outcomes])
        await queue.release(released or [])
        await queue.fail_pending(disabled, "not attempted: the endpoint was disabled", now)
    if 0 <= recorded < len(outcomes):  # (-1: the driver can't count an executemany)
        log.warning("webhook outcomes lost their lease", recorded=recorded, claimed=len(outcomes))
    for webhook_id in disabled:
        log.warning("webhook endpoint disabled", webhook_id=webhook_id)


async def purge_webhook_deliveries(ctx: WorkerContext) -> int:
    """Retention: delete final deliveries older than `webhooks_retention_days`, a few thousand at a time."""
    cutoff = ctx.clock() - timedelta(days=ctx.settings.webhooks_retention_days)
    boundary = "dlv_" + str(ULID.from_datetime(cutoff))[:10] + "0" * 16
    async with ctx.database.transaction() as session:
        return await DeliveryLogPurge(session).purge(boundary, cutoff, PURGE_CHUNK)
