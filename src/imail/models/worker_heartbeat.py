from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import Base


class WorkerHeartbeat(Base):
    """One row per running worker process, refreshed while it lives (status pages count the fresh ones)."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    seen_at: Mapped[datetime] = mapped_column(index=True)


def owned_by_dead_worker(worker_id: Any, now: datetime, dead_after: timedelta) -> Any:
    """A row whose holder (a worker's instance id, in `worker_id`) has no heartbeat within `dead_after`:
    SIGKILLed, or stopped. A lease bounds only a worker that still beats; this is how a dead one's rows are
    taken over in seconds."""
    alive = select(WorkerHeartbeat.id).where(WorkerHeartbeat.seen_at >= now - dead_after)
    return or_(worker_id.is_(None), worker_id.not_in(alive))
