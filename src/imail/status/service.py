"""Component checks behind `/v1/status/full`."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis
from sqlalchemy import text

from imail import __version__
from imail.analytics.public import operations
from imail.config import Settings
from imail.db import Database
from imail.kit.clock import utcnow
from imail.kit.ratelimit import RateLimiter
from imail.status.schemas import Component, Operations, StatusFull

CHECK_TIMEOUT = 3.0


async def _timed(check) -> Component:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception as exc:  # any failure of a dependency is a status, not an error
        return Component(status="down", detail=f"{type(exc).__name__}: {str(exc)[:160]}")
    return Component(status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 2))


async def check_database(database: Database) -> Component:
    async def ping() -> None:
        async with database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    component = await _timed(ping)
    if component.status == "ok":
        component.detail = database.engine.dialect.name
    return component


async def check_redis(redis: Redis | None, limiter: RateLimiter) -> Component:
    if redis is None:
        return Component(status="disabled", detail="IMAIL_REDIS_URL not set: in-process rate limiting")
    component = await _timed(redis.ping)
    if component.status == "ok" and limiter.degraded:
        component.status = "degraded"
        component.detail = "rate limiter on per-process buckets until its next successful call"
    return component


async def full_status(
    database: Database, redis: Redis | None, limiter: RateLimiter, settings: Settings
) -> StatusFull:
    db_component, redis_component = await asyncio.gather(
        check_database(database), check_redis(redis, limiter)
    )
    components = {"database": db_component, "redis": redis_component}
    states = {c.status for c in components.values()}
    overall = (
        "down" if db_component.status == "down" else ("degraded" if states & {"down", "degraded"} else "ok")
    )
    figures = None
    if db_component.status == "ok":
        try:
            figures = Operations.model_validate(
                (await asyncio.wait_for(operations(database), CHECK_TIMEOUT)).model_dump()
            )
        except Exception:  # the figures are extra: never turn a status answer into an error
            figures = None
    return StatusFull(
        status=overall,
        checked_at=utcnow(),
        version=__version__,
        components=components,
        operations=figures,
        warnings=settings.public_url_warnings(),
    )
