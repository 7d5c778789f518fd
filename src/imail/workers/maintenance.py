"""Housekeeping workers: the process heartbeat, expiry of idempotency records and audit log entries, freed
memory back to the system, DNS re-checks of tracking domains."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from imail.audit import service as audit
from imail.deprecations.notices import send_deprecation_warnings
from imail.idempotency import service as idempotency
from imail.kit import memory
from imail.tracking_domains import service as tracking_domains
from imail.workers.context import WorkerContext
from imail.workers.repository import HeartbeatRepository

# Rows of processes gone this long are dropped (their claims were taken over long before).
HEARTBEAT_FORGET = timedelta(days=1)


async def heartbeat(ctx: WorkerContext) -> int:
    now = ctx.clock()
    async with ctx.database.transaction() as session:
        heartbeats = HeartbeatRepository(session)
        await heartbeats.beat(ctx.instance_id, socket.gethostname(), os.getpid(), now)
        await heartbeats.forget_before(now - HEARTBEAT_FORGET)
    return 0


async def purge_idempotency_records(ctx: WorkerContext) -> int:
    return await idempotency.purge_expired(ctx.database, timedelta(hours=ctx.settings.idempotency_ttl_hours))


async def prune_audit_log(ctx: WorkerContext) -> int:
    return await audit.prune(ctx.database, ctx.settings.audit_log_retention_days, ctx.clock())


async def release_memory(ctx: WorkerContext) -> int:
    memory.release_free_memory()
    return 0


async def warn_deprecation_users(ctx: WorkerContext) -> int:
    return await send_deprecation_warnings(ctx.database, ctx.settings, ctx.clock())


async def recheck_tracking_domains(ctx: WorkerContext) -> int:
    return await tracking_domains.recheck_due(ctx.database, ctx.settings, ctx.clock())
