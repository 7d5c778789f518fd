from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base, IdMixin, TenantMixin


class IdempotencyRecord(IdMixin, TenantMixin, Base):
    """The first response to a POST carrying an Idempotency-Key, kept for replay to the API key that made
    it."""

    __tablename__ = "idempotency_records"
    # Per API key: another key of the workspace using the same Idempotency-Key runs its own request.
    __tenant_table_args__ = (UniqueConstraint("api_key_id", "key"),)
    id_prefix = "idem"

    api_key_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column()
    # Fernet-encrypted (kit.crypto, IDEMPOTENT_RESPONSES): a response may carry a new key's or webhook's
    # secret.
    response_body_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)
    completed_at: Mapped[datetime | None] = mapped_column()
