"""Component checks behind `/v1/status/full`."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from imail import __version__
from imail.analytics.public import operations
from imail.config import Settings
from imail.db import Database
from imail.kit.clock import utcnow
from imail.kit.ratelimit import RateLimiter
from imail.sending import service as sending
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
    component = await _timed(database.ping)
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


async def check_sending(database: Database, settings: Settings, figures: Operations | None) -> Component:
    """Degraded while emails claimed by dead workers wait to be taken over (a crash, for up to
    IMAIL_WORKER_DEAD_SECONDS and a resolver pass); their age counts in the figures' sending lag."""
    now = utcnow()
    try:
        async with database.transaction() as session:
            held = await asyncio.wait_for(sending.dead_claims(session, settings, now), CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - a status, not an error
        return Component(status="degraded", detail=f"{type(exc).__name__}: {str(exc)[:160]}")
    if figures is not None:
        figures.claims_held_by_dead_workers = held.count
        if held.oldest_claimed_at is not None:
            waited = max(0.0, (now - held.oldest_claimed_at).total_seconds())
            figures.sending_lag_seconds = round(max(figures.sending_lag_seconds, waited), 1)
    if held.count:
        return Component(
            status="degraded",
            detail=f"{held.count} emails claimed by workers that stopped beating wait to be taken over",
        )
    return Component(status="ok")


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
        components["sending"] = await check_sending(database, settings, figures)
        if components["sending"].status != "ok" and overall == "ok":
            overall = "degraded"
    return StatusFull(
        status=overall,
        checked_at=utcnow(),
        version=__version__,
        components=components,
        operations=figures,
        warnings=settings.public_url_warnings(),
    )
