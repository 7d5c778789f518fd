"""Many concurrent calls served by one batched call (group commit)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`await coalescer(key)` returns `handle(batch)[key]`, where `batch` holds every key asked for while the
    previous batch was out (or in the same turn of the event loop). Fifty coroutines each needing one row
    written cost one statement and one round trip instead of fifty; none waits longer than one batch behind.

    When `handle` raises, every caller of that batch gets the exception; later batches are unaffected.

    `linger` (seconds) holds each batch open that long before it goes, so calls a moment apart share it too:
    fewer, larger batches, each caller waiting at most `linger` longer."""

    def __init__(self, handle: Callable[[list[K]], Awaitable[Mapping[K, V]]], linger: float = 0.0):
        self._handle = handle
        self._linger = linger
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, key: K) -> V:
        if key in self._waiting:
            raise ValueError(f"{key!r} is already waiting in this batch")
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        batch: dict[K, asyncio.Future[V]] = {}
        try:
            while self._waiting:
                if self._linger:
                    await asyncio.sleep(self._linger)
                batch, self._waiting = self._waiting, {}
                try:
                    results = await self._handle(list(batch))
                except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch, who decides
                    _fail(batch.values(), exc)
                    continue
                self._settle(batch, results)
        except BaseException:  # cancelled: nobody may be left waiting on a batch that will never run
            for future in [*batch.values(), *self._waiting.values()]:
                future.cancel()
            self._waiting = {}
            raise

    @staticmethod
    def _settle(batch: dict[K, asyncio.Future[V]], results: Mapping[K, V]) -> None:
        for key, future in batch.items():
            if future.done():  # its caller was cancelled meanwhile
                continue
            if key in results:
                future.set_result(results[key])
            else:
                future.set_exception(KeyError(key))


def _fail(futures: Iterable[asyncio.Future[V]], exc: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)
