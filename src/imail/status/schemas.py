from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from typing_extensions import TypeAliasType

# A named alias is one schema component, so generated clients get one well-named enum.
Health = TypeAliasType("Health", Literal["ok", "degraded", "down", "disabled"])


class Healthz(BaseModel):
    status: Literal["ok"] = "ok"


class Component(BaseModel):
    status: Health
    detail: str | None = None
    latency_ms: float | None = None


class Operations(BaseModel):
    """Operational figures: workers alive by heartbeat (seen in the last 30 s), sending lag (how late the
    oldest due-but-unsent email is, seconds: a due step not yet claimed, or one claimed by a worker that has
    since died), claims held by dead workers (emails claimed by a worker not seen for
    IMAIL_WORKER_DEAD_SECONDS, waiting to be taken over), webhook backlog (deliveries due now), IMAP readers
    connected (mailboxes leased by a reader)."""

    workers_alive: int
    sending_lag_seconds: float
    claims_held_by_dead_workers: int = 0
    webhook_backlog: int
    imap_readers_connected: int


class StatusFull(BaseModel):
    status: Health
    checked_at: datetime
    version: str
    components: dict[str, Component]
    operations: Operations | None = None
    warnings: list[str] = Field(
        default_factory=list,
        description="Configuration the operator should fix, like an http IMAIL_PUBLIC_URL.",
    )
