"""The per-key cap on work in flight: in-process counts, or leases in Redis that every process shares."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from imail.kit.concurrency import ConcurrencyLimiter
from tests.fixtures.ports import free_port


async def _exercise(first: ConcurrencyLimiter, second: ConcurrencyLimiter) -> None:
    key = f"test:{uuid.uuid4().hex}"
    held = [await first.acquire(key, 2, 60), await second.acquire(key, 2, 60)]
    assert all(held)
    assert await first.acquire(key, 2, 60) is None and await second.acquire(key, 2, 60) is None
    assert await first.acquire(f"{key}:other", 2, 60) is not None  # another key has its own slots
    await held[0].release()
    await held[0].release()  # twice is once
    again = await second.acquire(key, 2, 60)
    assert again is not None and await first.acquire(key, 2, 60) is None


async def test_in_process_slots_are_counted_per_key():
    limiter = ConcurrencyLimiter(None)
    await _exercise(limiter, limiter)


async def test_redis_slots_are_shared_by_every_process(redis_url):
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    try:
        await _exercise(ConcurrencyLimiter(clients[0]), ConcurrencyLimiter(clients[1]))
    finally:
        for client in clients:
            await client.aclose()


async def test_an_unreachable_redis_falls_back_to_in_process_slots():
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    limiter = ConcurrencyLimiter(client)
    try:
        lease = await limiter.acquire("k", 1, 60)
        assert lease is not None and limiter.degraded
        assert await limiter.acquire("k", 1, 60) is None
        await lease.release()
        assert await limiter.acquire("k", 1, 60) is not None
    finally:
        await client.aclose()
