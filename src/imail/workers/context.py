from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from redis.asyncio import Redis

from imail.config import Settings
from imail.db import Database
from imail.kit.clock import utcnow
from imail.wiring import install_subscribers


@dataclass
class WorkerContext:
    """What every worker iteration gets: shared clients owned by the runner."""

    settings: Settings
    database: Database
    redis: Redis | None
    http: httpx.AsyncClient
    instance_id: str
    extra: dict = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow  # tests drive days through this instead of sleeping
    # Set when the process is shutting down: a worker finishes what it has started and gives the rest back.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        # Every worker records events: their webhook deliveries and rollups must be wired (imail.wiring).
        install_subscribers()
