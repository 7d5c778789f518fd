from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
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
