"""create_app(): the lifespan (engine, Redis, HTTP client, worker supervisor), middleware and error
handlers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from imail import __version__
from imail.api import mount_routers
from imail.auth.cache import CallerCache
from imail.auth.middleware import AuthenticateBeforeBody
from imail.config import Settings, get_settings
from imail.db import Database
from imail.docs import mount_docs
from imail.errors import register_error_handlers
from imail.idempotency.deps import Replayed, replayed_response
from imail.idempotency.recorder import IdempotencyRecorder
from imail.kit.concurrency import ConcurrencyLimiter
from imail.kit.middleware import HeadAsGet, RequestContextMiddleware
from imail.kit.ratelimit import Limit, RateLimiter
from imail.openapi import install_openapi
from imail.tracking_domains.hosts import HostOwners, TrackingHostGate
from imail.tracking_domains.service import public_host
from imail.wiring import install_subscribers
from imail.workers.context import WorkerContext
from imail.workers.runner import Supervisor, instance_id

DESCRIPTION = (
    "REST API of imail, the self-hostable cold-email server. JSON bodies, bearer keys (`imk_live_…` / "
    "`imk_test_…`), cursor pagination, structured errors, `Imail-Version` pinning."
)


def make_redis(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    # Blocking: past max_connections a call waits (up to `timeout`) for a free connection. redis-py's default
    # pool refuses at once instead, and the limiter would fall back to per-process buckets whenever more than
    # 100 requests of one process were in flight, letting a burst through once per process. A few connections
    # serve thousands of one-round-trip calls a second; opening hundreds at once under load is what times out.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=32,
        timeout=10.0,
        socket_timeout=2.0,
        socket_connect_timeout=5.0,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database = Database(settings)
    redis = make_redis(settings)
    http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
    app.state.database = database
    app.state.redis = redis
    app.state.rate_limiter = RateLimiter(redis)
    app.state.outbound = ConcurrencyLimiter(redis)
    app.state.callers = CallerCache()
    app.state.http = http
    supervisor = None
    if app.state.run_workers:
        supervisor = Supervisor(WorkerContext(settings, database, redis, http, instance_id()))
        supervisor.start()
    try:
        yield
    finally:
        if supervisor is not None:
            await supervisor.stop()
        await http.aclose()
        if redis is not None:
            await redis.aclose()
        await database.dispose()


def freeze_startup_heap() -> None:
    """For a serving process, once its app is built: what exists now (modules, schemas, routes, compiled
    validators) lives as long as the process, so it leaves the collector's generations and full collections
    under load (a 5,000-lead request allocates enough to trigger several) stop walking it again and again."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, run_workers: bool = False) -> FastAPI:
    settings = settings or get_settings()
    install_subscribers()
    app = FastAPI(
        title="imail",
        version=__version__,
        summary="Cold-email outreach server: the imail v1 REST API",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
        # A body sent without Content-Type is read as JSON (curl users); other types are refused with a hint.
        strict_content_type=False,
    )
    app.state.settings = settings
    app.state.run_workers = run_workers
    register_error_handlers(app)
    app.add_exception_handler(Replayed, replayed_response)
    mount_routers(app)
    mount_docs(app)
    install_openapi(app)
    # Added last = outermost. The recorder stores what the route answered (no request id in it); the key is
    # checked before anything reads a body; the request context gives every answer its id and headers; HEAD is
    # a GET whose body is dropped on the way out.
    app.add_middleware(IdempotencyRecorder)
    app.add_middleware(AuthenticateBeforeBody)
    # Before any key is read: on a workspace's tracking domain the API does not exist (404), not even as a
    # 401.
    app.state.tracking_hosts = HostOwners()
    app.add_middleware(TrackingHostGate, public=public_host(settings))
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        public_limit=Limit(settings.public_rate_limit_per_minute, settings.public_rate_limit_burst),
    )
    app.add_middleware(HeadAsGet)
    return app
