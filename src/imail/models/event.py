from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import Base, IdMixin, TenantMixin


class Event(IdMixin, TenantMixin, Base):
    """The event log (transactional outbox): written in the same transaction as the change it describes."""

    __tablename__ = "events"
    id_prefix = "evt"

    type: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    data: Mapped[dict[str, Any]] = mapped_column()
