"""The warmup worker: claim the pool's due warmup emails (one transaction), hand them to each sender's SMTP
server over the sending engine's pooled connections, record what happened (a second transaction). See
imail.warmup."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from imail.inboxes.connection import CredentialsUnavailable
from imail.sending.service import Outcome
from imail.warmup import service
from imail.workers.context import WorkerContext
from imail.workers.sending import login_endpoints, smtp_pool, without_credentials

RNG_KEY = "warmup.rng"


async def _send_for_inbox(ctx: WorkerContext, jobs: list[service.WarmupJob]) -> list[Outcome]:
    inbox = jobs[0].inbox
    try:
        endpoints = await login_endpoints(ctx, inbox)
    except CredentialsUnavailable as exc:
        return await without_credentials(ctx, inbox, [job.warmup_id for job in jobs], exc)
    pool = smtp_pool(ctx)
    outcomes = []
    async with pool.lock(inbox.id):  # shared with campaign sends: one SMTP session per inbox, used in turn
        for job in jobs:
            outcomes.append(
                await pool.send(inbox.id, endpoints.smtp, job.warmup_id, inbox.email, job.to_email, job.data)
            )
    return outcomes


async def send_warmup(ctx: WorkerContext) -> int:
    """One iteration; returns the inboxes examined (0: nothing due, wait for the interval)."""
    rng = ctx.extra.setdefault(RNG_KEY, random.Random())
    async with ctx.database.transaction() as session:
        examined, jobs = await service.claim(session, ctx.settings, ctx.clock(), rng)
    if jobs:
        by_inbox: dict[str, list[service.WarmupJob]] = defaultdict(list)
        for job in jobs:
            by_inbox[job.inbox.id].append(job)
        limit = asyncio.Semaphore(ctx.settings.sending_smtp_concurrency)

        async def run(group: list[service.WarmupJob]) -> list[Outcome]:
            async with limit:
                return await _send_for_inbox(ctx, group)

        results = await asyncio.gather(*(run(group) for group in by_inbox.values()))
        async with ctx.database.transaction() as session:
            await service.record_outcomes(
                session, ctx.settings, [o for group in results for o in group], ctx.clock()
            )
    return examined
