"""The rate limiter across real API processes: one surge key's bucket is shared through Redis by every
process, and without Redis each process still limits on its own and says so in /v1/status/full."""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import Counter

import httpx
import pytest

from tests.fixtures.api_servers import Server, api_servers, closed_port
from tests.fixtures.factories import make_workspace

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SURGE_BURST = 240
SURGE_PER_MINUTE = 100
# Generous: a busy machine (other tests on the other cores) only makes the surge slower, never a failure.
REQUEST_TIMEOUT = 300.0
CONNECTIONS_PER_CLIENT = 25


def refill_allowance(elapsed: float, processes: int = 1) -> int:
    """Tokens that can come back during `elapsed` seconds, per bucket, plus one for timing edges."""
    return processes * (math.ceil(elapsed * SURGE_PER_MINUTE / 60) + 1)


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    # Small pools keep two processes well inside PostgreSQL's connection limit; a long pool timeout keeps
    # a loaded machine from turning queueing into 503s.
    return {
        "IMAIL_DATABASE_URL": database_url,
        "IMAIL_REDIS_URL": redis_url,
        "IMAIL_DATABASE_POOL_SIZE": "5",
        "IMAIL_DATABASE_TIMEOUT": "240",
    }


async def fire(
    servers: list[Server], headers: dict[str, str], total: int
) -> tuple[list[tuple[int, httpx.Response]], float]:
    """`total` GET /v1/keys all in flight at once, split evenly over the servers; (server index, response)
    pairs and the seconds they took. Many small clients, one connection per request: httpx's pool slows down
    badly with hundreds of requests queued on one client, and the test should measure the servers, not the
    pool."""
    per_client = CONNECTIONS_PER_CLIENT
    per_server = total // len(servers)
    tls = ssl.create_default_context()  # unused over http, but built once instead of once per client
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    clients = [
        (
            index,
            httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=REQUEST_TIMEOUT, verify=tls),
        )
        for index, server in enumerate(servers)
        for _ in range(math.ceil(per_server / per_client))
    ]
    try:

        async def one(n: int) -> tuple[int, httpx.Response]:
            index, client = clients[n % len(clients)]
            return index, await client.get("/v1/keys", headers=headers)

        started = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(total))), REQUEST_TIMEOUT * 2)
        return list(results), time.monotonic() - started
    finally:
        for _, client in clients:
            await client.aclose()


def assert_rate_limited_body(response: httpx.Response) -> None:
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-limit"] == str(SURGE_BURST)
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert int(response.headers["x-ratelimit-reset"]) >= 1
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == "rate_limited"
    assert "retry after" in body["error"]["message"]
    assert body["error"]["doc"].endswith("/docs/errors/rate_limited")
    assert body["request_id"] == response.headers["x-request-id"]


def assert_allowed(response: httpx.Response) -> None:
    assert response.headers["x-ratelimit-limit"] == str(SURGE_BURST)
    assert 0 <= int(response.headers["x-ratelimit-remaining"]) < SURGE_BURST
    assert "retry-after" not in response.headers
    assert response.json()["data"], "the key's own workspace keys are listed"


async def test_thousand_requests_over_two_processes_share_one_bucket(postgres_url, redis_url, database):
    surge = await make_workspace(database, "surge", "Surge Burst")
    with api_servers(2, server_env(postgres_url, redis_url)) as servers:
        results, elapsed = await fire(servers, surge.headers(), 1000)

    statuses = Counter(r.status_code for _, r in results)
    assert set(statuses) <= {200, 429}, statuses
    allowed = statuses[200]
    # One shared bucket: the burst, plus only what refilled while the test ran (two private buckets: ~480).
    assert SURGE_BURST <= allowed <= SURGE_BURST + refill_allowance(elapsed), (allowed, elapsed)
    assert statuses[429] == 1000 - allowed
    per_server = Counter(index for index, _ in results)
    assert per_server == {0: 500, 1: 500}
    for index in (0, 1):
        assert any(r.status_code == 429 for i, r in results if i == index), f"server {index} never limited"
    for _, response in results:
        assert response.headers["x-request-id"].startswith("req_")
        if response.status_code == 200:
            assert_allowed(response)
        else:
            assert_rate_limited_body(response)


async def test_without_redis_each_process_limits_on_its_own_and_reports_degraded(postgres_url, database):
    surge = await make_workspace(database, "surge", "Surge No Redis")
    down_redis = f"redis://127.0.0.1:{closed_port()}/0"
    with api_servers(2, server_env(postgres_url, down_redis)) as servers:
        results, elapsed = await fire(servers, surge.headers(), 600)
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
            statuses_full = [(await http.get(s.base_url + "/v1/status/full")) for s in servers]

    statuses = Counter(r.status_code for _, r in results)
    assert set(statuses) <= {200, 429}, statuses
    # Requests still answer, and each process enforces the surge bucket by itself.
    for index in (0, 1):
        mine = Counter(r.status_code for i, r in results if i == index)
        assert SURGE_BURST <= mine[200] <= SURGE_BURST + refill_allowance(elapsed), (index, mine, elapsed)
        assert mine[429] == 300 - mine[200]
    for _, response in results:
        if response.status_code == 429:
            assert_rate_limited_body(response)
        else:
            assert_allowed(response)

    for response in statuses_full:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "degraded"
        assert body["components"]["redis"]["status"] == "down"
        assert body["components"]["database"]["status"] == "ok"
