from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import Base, IdMixin, TenantMixin


class IdempotencyRecord(IdMixin, TenantMixin, Base):
    """The first response to a POST carrying an Idempotency-Key, kept for replay."""

    __tablename__ = "idempotency_records"
    __tenant_table_args__ = (UniqueConstraint("workspace_id", "livemode", "key"),)
    id_prefix = "idem"

    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column()
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)
    completed_at: Mapped[datetime | None] = mapped_column()
