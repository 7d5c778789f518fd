from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from redis.asyncio import Redis

from imail.config import Settings
from imail.db import Database
from imail.kit.clock import utcnow


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
