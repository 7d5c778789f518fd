"""The worker supervisor: runs each registered worker in a loop, survives its failures, stops gracefully."""

from __future__ import annotations

import asyncio
import os
import socket
from contextlib import suppress

import structlog

from imail.kit.ids import new_id
from imail.workers.context import WorkerContext
from imail.workers.registry import WORKERS, WorkerSpec
from imail.workers.repository import HeartbeatRepository

log = structlog.get_logger("imail.workers")

ERROR_BACKOFF = (1.0, 2.0, 5.0, 15.0, 30.0)


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('req')[-8:]}"


class Supervisor:
    def __init__(
        self, ctx: WorkerContext, specs: tuple[WorkerSpec, ...] = WORKERS, grace_seconds: float | None = None
    ):
        self.ctx = ctx
        self.specs = specs
        self.grace_seconds = ctx.settings.shutdown_grace if grace_seconds is None else grace_seconds
        self._stopping = ctx.stopping
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        for spec in self.specs:
            for slot in range(spec.concurrency):
                self._tasks.append(asyncio.create_task(self._loop(spec), name=f"worker:{spec.name}:{slot}"))
        log.info("workers started", instance=self.ctx.instance_id, workers=[s.name for s in self.specs])

    async def _loop(self, spec: WorkerSpec) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                done = await spec.run(self.ctx)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker iteration failed", worker=spec.name)
                done = 0
                failures += 1
            if done:
                continue
            delay = spec.interval if failures == 0 else ERROR_BACKOFF[min(failures, len(ERROR_BACKOFF)) - 1]
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def stop(self) -> None:
        """Let running iterations finish within the grace period, then cancel what is left."""
        self._stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with suppress(Exception):
            async with self.ctx.database.transaction() as session:
                await HeartbeatRepository(session).remove(self.ctx.instance_id)
        log.info("workers stopped", instance=self.ctx.instance_id)

    async def wait(self) -> None:
        await self._stopping.wait()
