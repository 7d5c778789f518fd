from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis

from imail.config import Settings
from imail.db import Database


@dataclass
class WorkerContext:
    """What every worker iteration gets: shared clients owned by the runner."""

    settings: Settings
    database: Database
    redis: Redis | None
    http: httpx.AsyncClient
    instance_id: str
    extra: dict = field(default_factory=dict)
