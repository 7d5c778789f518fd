from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class ApiKey(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "api_keys"
    id_prefix = "key"

    name: Mapped[str] = mapped_column(String(120), default="")
    # SHA-256 of the whole key: keys carry 160 random bits, so a fast hash is enough and lets us look them up.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redacted: Mapped[str] = mapped_column(String(40))
    scopes: Mapped[list[str] | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
