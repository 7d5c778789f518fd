"""Token buckets per API key: one atomic Redis script shared by every process, or in-process buckets.

When Redis is configured but unreachable, the limiter falls back to in-process buckets (each process then
enforces the limit on its own) and reports itself degraded until Redis answers again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("imail.ratelimit")

# KEYS[1] bucket, optional KEYS[2] a key whose value comes back too ('0' when unset); ARGV: rate (tokens/s),
# burst. Uses the server's clock so every API process agrees.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1])
local ts = tonumber(data[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
if KEYS[2] then
  return {allowed, string.format('%.6f', tokens), redis.call('GET', KEYS[2]) or '0'}
end
return {allowed, string.format('%.6f', tokens)}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    per_minute: int
    burst: int

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int
    watched: str | None = None  # the value of `hit(watch=…)`'s key, when the bucket lives in Redis

    @classmethod
    def from_tokens(cls, allowed: bool, tokens: float, limit: Limit, watched: str | None = None) -> Decision:
        return cls(
            allowed=allowed,
            limit=limit.burst,
            remaining=max(0, math.floor(tokens)),
            reset_seconds=max(0, math.ceil((limit.burst - tokens) / limit.rate)),
            retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / limit.rate)),
            watched=watched,
        )

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class LocalBuckets:
    """In-process buckets: exact for one process, per-process when several run."""

    # Buckets are keyed by client address too, which anyone can vary: past this many, full ones are dropped (a
    # full bucket is what a new one would be, so dropping it changes no decision).
    SWEEP_AT = 10_000

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float, float]] = {}  # key: (tokens, when, seconds to refill)

    def hit(self, key: str, limit: Limit) -> Decision:
        now = time.monotonic()
        tokens, ts, _ = self._buckets.get(key, (float(limit.burst), now, 0.0))
        tokens = min(limit.burst, tokens + (now - ts) * limit.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if key not in self._buckets and len(self._buckets) >= self.SWEEP_AT:
            self._sweep(now)
        self._buckets[key] = (tokens, now, (limit.burst - tokens) / limit.rate)
        return Decision.from_tokens(allowed, tokens, limit)

    def _sweep(self, now: float) -> None:
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < v[2]}

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    def __init__(self, redis: Redis | None, prefix: str = "imail:rl:"):
        self.redis = redis
        self.prefix = prefix
        self.local = LocalBuckets()
        self.degraded = False
        self._script = redis.register_script(TOKEN_BUCKET_LUA) if redis is not None else None

    @property
    def shared(self) -> bool:
        return self._script is not None and not self.degraded

    async def hit(self, key: str, limit: Limit, watch: str | None = None) -> Decision:
        """Take a token for `key`. With `watch`, the decision also carries that Redis key's value, read in the
        same script (no extra round trip); None when the buckets are in-process."""
        if self._script is None:
            return self.local.hit(key, limit)
        keys = [self.prefix + key] if watch is None else [self.prefix + key, watch]
        try:
            allowed, tokens, *watched = await self._script(keys=keys, args=[limit.rate, limit.burst])
        except (RedisError, OSError) as exc:
            if not self.degraded:
                log.warning("rate limiter falling back to in-process buckets", error=str(exc)[:200])
            self.degraded = True
            return self.local.hit(key, limit)
        if self.degraded:
            log.info("rate limiter back on redis")
            self.degraded = False
        return Decision.from_tokens(
            bool(int(allowed)), float(tokens), limit, _text(watched[0]) if watched else None
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
