"""How much slow work one key (a workspace) has in flight, capped: leases in one Redis sorted set per key,
shared by every process, or in-process counters without Redis.

A lease its process never returned (the process died) expires after `lease_seconds`, so a crash cannot take a
key's slots for good. When Redis is configured but unreachable, the limiter counts in-process until it
answers.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("imail.concurrency")

# KEYS[1] the key's leases (member: lease id, score: expiry in ms); ARGV: limit, lease ms, lease id.
# The server's clock, so every process agrees on expiry.
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


@dataclass
class Lease:
    """One slot, held until `release()` (idempotent)."""

    limiter: ConcurrencyLimiter
    key: str
    token: str
    shared: bool
    released: bool = False

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        await self.limiter._release(self)


class ConcurrencyLimiter:
    def __init__(self, redis: Redis | None, prefix: str = "imail:inflight:"):
        self.redis = redis
        self.prefix = prefix
        self.local: dict[str, int] = {}
        self.degraded = False
        self._script = redis.register_script(ACQUIRE_LUA) if redis is not None else None

    async def acquire(self, key: str, limit: int, lease_seconds: float) -> Lease | None:
        """A slot for `key` if fewer than `limit` are held, else None."""
        token = uuid.uuid4().hex
        if self._script is not None:
            try:
                granted = await self._script(
                    keys=[self.prefix + key], args=[limit, math.ceil(lease_seconds * 1000), token]
                )
            except (RedisError, OSError) as exc:
                if not self.degraded:
                    log.warning("concurrency limiter falling back to in-process counts", error=str(exc)[:200])
                self.degraded = True
            else:
                if self.degraded:
                    log.info("concurrency limiter back on redis")
                    self.degraded = False
                return Lease(self, key, token, shared=True) if int(granted) else None
        held = self.local.get(key, 0)
        if held >= limit:
            return None
        self.local[key] = held + 1
        return Lease(self, key, token, shared=False)

    async def _release(self, lease: Lease) -> None:
        if not lease.shared:
            left = self.local.get(lease.key, 1) - 1
            if left > 0:
                self.local[lease.key] = left
            else:
                self.local.pop(lease.key, None)
            return
        assert self.redis is not None
        try:
            await self.redis.zrem(self.prefix + lease.key, lease.token)
        except (RedisError, OSError) as exc:  # the lease expires on its own
            log.warning("concurrency lease not returned", key=lease.key, error=str(exc)[:200])
