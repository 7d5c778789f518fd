"""A value computed at most once per TTL per process, however many callers ask at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cached(Generic[T]):
    def __init__(self, ttl: float, compute: Callable[[], Awaitable[T]]):
        self.ttl = ttl
        self.compute = compute
        self.computations = 0
        self._value: T | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        if time.monotonic() < self._expires:
            return self._value  # type: ignore[return-value]
        async with self._lock:
            if time.monotonic() >= self._expires:
                self._value = await self.compute()
                self.computations += 1
                self._expires = time.monotonic() + self.ttl
        return self._value  # type: ignore[return-value]
