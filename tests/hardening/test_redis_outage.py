"""Redis dies under two API processes' rate limiter and comes back: while it is gone each process limits on
its own bucket (requests still answer, with their rate-limit headers) and `/v1/status/full` says `degraded`;
once it is back the shared bucket returns and the status is `ok`, with nobody restarting anything.

The two "processes" are two apps in this test process, each with its own limiter state and Redis connection
pool, as two `imail serve` processes have (real processes without Redis:
tests/platform/test_ratelimit_processes)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from contextlib import AsyncExitStack

import httpx

from imail.main import create_app
from tests.conftest import make_settings
from tests.fixtures.factories import bearer, make_key, make_workspace

PER_MINUTE = 60  # one token a second
BURST = 20


def refill(elapsed: float) -> int:
    return math.ceil(elapsed * PER_MINUTE / 60) + 1


async def burst(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> Counter:
    responses = await asyncio.gather(*(client.get("/v1/suppressions", headers=headers) for _ in range(count)))
    for response in responses:
        assert response.status_code in (200, 429), response.text
        assert response.headers["x-ratelimit-limit"] == str(BURST)
        if response.status_code == 429:
            assert (
                response.json()["error"]["code"] == "rate_limited"
                and int(response.headers["retry-after"]) >= 1
            )
    return Counter(r.status_code for r in responses)


async def status_of(client: httpx.AsyncClient) -> dict:
    response = await client.get("/v1/status/full")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_for_status(client: httpx.AsyncClient, wanted: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = await status_of(client)
        if body["status"] == wanted or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


async def test_redis_outage_falls_back_to_per_process_buckets_and_recovers(
    database_url, database, private_redis, monkeypatch
):
    # The public status is cached 30 s per process; a shorter cache lets the test see each transition.
    monkeypatch.setattr("imail.analytics.public.TTL", 1.0)
    workspace = await make_workspace(database, "apex", "Limited", per_minute=PER_MINUTE, burst=BURST)
    headers = workspace.headers()
    settings = make_settings(database_url, redis_url=private_redis.url)
    async with AsyncExitStack() as stack:
        clients, apps = [], []
        for _ in range(2):
            app = create_app(settings)
            apps.append(app)
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app), base_url="http://imail.test", timeout=30
                    )
                )
            )
        a, b = clients

        # Shared: one bucket for both processes.
        started = time.monotonic()
        shared = await burst(a, headers, 15) + await burst(b, headers, 15)
        assert BURST <= shared[200] <= BURST + refill(time.monotonic() - started), shared
        assert (await status_of(a))["components"]["redis"]["status"] == "ok"

        private_redis.kill()
        started = time.monotonic()
        alone = [await burst(a, headers, BURST + 10), await burst(b, headers, BURST + 10)]
        elapsed = time.monotonic() - started
        # Each process enforces the limit on its own bucket (full again: it never held tokens before).
        for counts in alone:
            assert BURST <= counts[200] <= BURST + refill(elapsed), (alone, elapsed)
            assert counts[429] > 0
        for client in (a, b):
            degraded = await wait_for_status(client, "degraded")
            assert degraded["status"] == "degraded", degraded
            assert degraded["components"]["redis"]["status"] == "down"
            assert degraded["components"]["database"]["status"] == "ok"
        assert all(app.state.rate_limiter.degraded for app in apps)

        private_redis.start()  # same port, empty: the limiter reconnects by itself on its next call
        deadline = time.monotonic() + 10
        while any(app.state.rate_limiter.degraded for app in apps) and time.monotonic() < deadline:
            for client in (a, b):
                await client.get("/v1/suppressions", headers=headers)
            await asyncio.sleep(0.1)
        # A fresh key, so the calls that brought the limiters back (some still on local buckets) don't count.
        headers = bearer(await make_key(database, workspace.workspace_id))
        started = time.monotonic()
        recovered = await burst(a, headers, 15) + await burst(b, headers, 15)
        assert BURST <= recovered[200] <= BURST + refill(time.monotonic() - started), recovered
        for client in (a, b):
            body = await wait_for_status(client, "ok")
            assert body["status"] == "ok" and body["components"]["redis"]["status"] == "ok", body
        assert not any(app.state.rate_limiter.degraded for app in apps)
