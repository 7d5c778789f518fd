"""Platform-wide figures, no auth: `GET /v1/metrics/public`, and the operational figures `/v1/status/full`
adds.

Both are computed at most once per 30 s per process (kit.cache.Cached); with Redis configured the computed
value is also shared through Redis (key `imail:public:<name>`, 30 s TTL), so a fleet of processes computes it
about once per 30 s in all, and a flood of anonymous requests never reaches the database."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from imail.analytics.repository import PlatformRepository
from imail.db import Database
from imail.kit.cache import Cached
from imail.kit.clock import utcnow

log = structlog.get_logger(__name__)

TTL = 30.0
PUBLIC_CACHE = "public, max-age=30"
HEARTBEAT_ALIVE = timedelta(seconds=30)  # the heartbeat worker beats every 10 s

M = TypeVar("M", bound=BaseModel)


class PublicMetrics(BaseModel):
    """Live-ledger figures across the whole platform (test-mode sends are not counted). Days are UTC days."""

    emails_sent_today: int
    replies_today: int
    active_inboxes: int
    reply_rate_7d: float
    sends_per_hour: list[int]  # the last 24 hours, oldest first; the last entry is the current (partial) hour
    computed_at: datetime


class Operations(BaseModel):
    workers_alive: int
    sending_lag_seconds: float
    webhook_backlog: int
    imap_readers_connected: int


async def public_metrics(database: Database, now: datetime | None = None) -> PublicMetrics:
    now = now or utcnow()
    today = now.date()
    async with database.transaction() as session:
        platform = PlatformRepository(session)
        sent_today, replies_today = await platform.live_sent_and_replied(today, today)
        sent_7d, replied_7d = await platform.live_sent_and_replied(today - timedelta(days=6), today)
        inboxes = await platform.live_connected_inboxes()
        hourly = await sends_per_hour(platform, now)
    return PublicMetrics(
        emails_sent_today=sent_today,
        replies_today=replies_today,
        active_inboxes=inboxes,
        reply_rate_7d=round(replied_7d / sent_7d, 4) if sent_7d else 0.0,
        sends_per_hour=hourly,
        computed_at=now,
    )


async def sends_per_hour(platform: PlatformRepository, now: datetime) -> list[int]:
    """Live `email.sent` events per UTC hour over the last 24 hours."""
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=23)
    counts = await platform.live_sends_per_hour(first)
    return [int(counts.get((first + timedelta(hours=i)).strftime("%Y-%m-%d %H"), 0)) for i in range(24)]


async def operations(database: Database, now: datetime | None = None) -> Operations:
    now = now or utcnow()
    async with database.transaction() as session:
        platform = PlatformRepository(session)
        workers = await platform.workers_seen_since(now - HEARTBEAT_ALIVE)
        oldest_due = await platform.oldest_due(now)
        backlog = await platform.webhook_backlog(now)
        readers = await platform.mailboxes_leased(now)
    if oldest_due is not None and oldest_due.tzinfo is None:
        oldest_due = oldest_due.replace(tzinfo=UTC)
    lag = max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else 0.0
    return Operations(
        workers_alive=int(workers or 0),
        sending_lag_seconds=round(lag, 1),
        webhook_backlog=int(backlog or 0),
        imap_readers_connected=int(readers or 0),
    )


def shared(
    redis: Redis | None, name: str, model: type[M], compute: Callable[[], Awaitable[M]], namespace: str = ""
) -> Cached[M]:
    """Cached per process for TTL seconds; through Redis (when configured) across processes. `namespace` (the
    database URL) keeps two installations sharing one Redis apart."""
    key = f"imail:public:{name}:{hashlib.sha256(namespace.encode()).hexdigest()[:16]}"

    async def through_redis() -> M:
        if redis is not None:
            try:
                stored = await redis.get(key)
                if stored is not None:
                    return model.model_validate_json(stored)
            except (
                RedisError,
                OSError,
                ValueError,
            ) as exc:  # Redis down: compute here, still once per TTL per process
                log.warning("public figures: Redis read failed", key=key, error=str(exc)[:200])
        value = await compute()
        if redis is not None:
            try:
                await redis.set(key, value.model_dump_json(), ex=int(TTL))
            except (RedisError, OSError) as exc:
                log.warning("public figures: Redis write failed", key=key, error=str(exc)[:200])
        return value

    return Cached(TTL, through_redis)


class Counter:
    """How many times the database was actually asked (tests assert a flood asks once)."""

    def __init__(self, fn: Callable[[], Awaitable[Any]]):
        self.fn, self.calls = fn, 0

    async def __call__(self) -> Any:
        self.calls += 1
        return await self.fn()


def metrics_cache(request: Request) -> Cached[PublicMetrics]:
    state = request.app.state
    if getattr(state, "public_metrics_cache", None) is None:
        state.public_metrics_compute = Counter(lambda: public_metrics(state.database))
        state.public_metrics_cache = shared(
            state.redis, "metrics", PublicMetrics, state.public_metrics_compute, state.settings.database_url
        )
    return state.public_metrics_cache


router = APIRouter(tags=["Status"])


@router.get("/metrics/public", response_model=PublicMetrics)
async def get_public_metrics(request: Request, response: Response):
    """Live platform figures: emails sent today, replies today (UTC day), connected inboxes, reply rate over
    the last 7 UTC days. No auth; computed at most once per 30 s per process (shared through Redis when
    configured)."""
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return await metrics_cache(request).get()
