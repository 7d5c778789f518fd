"""Every background worker, in one list: name, function, interval and concurrency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from imail.workers import maintenance
from imail.workers.context import WorkerContext


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    run: Callable[[WorkerContext], Awaitable[int]]
    interval: float  # seconds to wait after an iteration that found nothing to do
    concurrency: int = 1


WORKERS: tuple[WorkerSpec, ...] = (
    WorkerSpec("heartbeat", maintenance.heartbeat, interval=10.0),
    WorkerSpec("idempotency_purge", maintenance.purge_idempotency_records, interval=600.0),
)
