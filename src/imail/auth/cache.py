"""Authenticated callers remembered per process for a few seconds, so a request with a known key skips the key
lookup: a database round trip and a noticeable share of a small request's CPU (bench/api.py).

Revocation stays immediate. Once a revoke commits, every cache of the process forgets the key, and a
generation counter in Redis is incremented; each API process reads that counter in the same Redis script as
its rate-limit bucket (no extra round trip), and when it changed, empties its cache and checks the key against
the database again before the request goes on. Without Redis (or while it is unreachable) another process
notices a revoke within TTL seconds, when its entry expires.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from imail.auth.service import Caller
    from imail.db import Database

log = structlog.get_logger("imail.auth")

TTL_SECONDS = 3.0
MAX_ENTRIES = 10_000  # one entry per key in use; past this the cache starts over rather than grow
REVOCATIONS_KEY = "imail:keys:revocations"

_caches: weakref.WeakSet[CallerCache] = (
    weakref.WeakSet()
)  # every cache of this process, for forget_everywhere


class CallerCache:
    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        # The revocation generation last read from Redis; an entry is only good under the one it was checked
        # in.
        self.generation: str | None = None
        self._entries: dict[str, tuple[Caller, float, str | None]] = {}
        _caches.add(self)

    def get(self, digest: str) -> Caller | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        caller, expires, generation = entry
        if expires <= self.clock() or generation != self.generation:
            del self._entries[digest]
            return None
        return caller

    def put(self, digest: str, caller: Caller, generation: str | None) -> None:
        """Remember a caller found in the database while `generation` was current (read before the lookup, so
        a revoke announced during the lookup is never hidden)."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (caller, self.clock() + self.ttl, generation)

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)

    def observe(self, generation: str) -> None:
        """A generation read from Redis: a new one means some key was revoked somewhere, so start over."""
        if generation != self.generation:
            self.generation = generation
            self._entries.clear()


async def announce_revocation(database: Database, digest: str) -> None:
    """After a revoke commits: forget the key in this process and tell the other processes (through Redis)."""
    for cache in list(_caches):
        cache.forget(digest)
    if not database.settings.redis_url:
        return
    redis = Redis.from_url(database.settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        await redis.incr(REVOCATIONS_KEY)
    except (RedisError, OSError) as exc:
        # The revoke itself is committed; other processes then notice within TTL_SECONDS instead.
        log.warning("could not announce a key revocation through redis", error=str(exc)[:200])
    finally:
        await redis.aclose()
