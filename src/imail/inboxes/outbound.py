"""The cap on slow outbound work an API request does for a workspace (mail server logins, an answer's SMTP
send, an OAuth code exchange): one workspace waiting on a dead server cannot take every worker slot and
connection."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.db import Database
from imail.errors import RateLimited
from imail.kit.concurrency import ConcurrencyLimiter


@dataclass(frozen=True)
class OutboundContext:
    """What a request needs to talk to mail servers and providers beyond its session: settings, the shared
    HTTP client (OAuth), the database (to read before the network wait without holding a connection through
    it) and the workspace concurrency limiter."""

    settings: Settings
    http: httpx.AsyncClient
    database: Database
    limiter: ConcurrencyLimiter


def outbound_context(request: Request) -> OutboundContext:
    state = request.app.state
    return OutboundContext(state.settings, state.http, state.database, state.outbound)


OutboundContextDep = Annotated[OutboundContext, Depends(outbound_context)]


def no_transaction_open(session: AsyncSession) -> None:
    """The guard before a request waits on a third party: its session must not hold a pooled connection in an
    open transaction meanwhile (one slow server would then starve every workspace of connections). Reads
    before the wait go through `Database.read()`; the request's own session starts at its first statement,
    after."""
    if session.in_transaction():
        raise RuntimeError("a database transaction is open across outbound network I/O")


def lease_seconds(settings: Settings) -> float:
    """Longer than any one operation may last (each network step is bounded by the mail timeout)."""
    return 3 * settings.mail_timeout + 10


@asynccontextmanager
async def outbound_slot(
    ctx: OutboundContext, session: AsyncSession, workspace_id: str
) -> AsyncIterator[None]:
    """Hold one of the workspace's `outbound_concurrency` slots for the block, which waits on a third party;
    429 `rate_limited` when all are taken. Raises if `session` has a transaction open (see
    no_transaction_open)."""
    no_transaction_open(session)
    settings = ctx.settings
    limit = settings.outbound_concurrency
    lease = await ctx.limiter.acquire(f"outbound:{workspace_id}", limit, lease_seconds(settings))
    if lease is None:
        retry = max(1, math.ceil(settings.mail_timeout))
        raise RateLimited(
            f"This workspace already has {limit} mail server logins, sends or OAuth exchanges in progress, "
            "the most "
            f"allowed at once (IMAIL_OUTBOUND_CONCURRENCY); retry after {retry} s",
            headers={"Retry-After": str(retry)},
        )
    try:
        yield
    finally:
        await lease.release()
