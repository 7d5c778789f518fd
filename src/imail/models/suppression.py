"""The suppression list: addresses and whole domains never emailed again, per workspace and ledger."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imail.kit.clock import utcnow
from imail.models.base import Base, IdMixin, TenantMixin


class SuppressionType(StrEnum):
    email = "email"
    domain = "domain"


class SuppressionReason(StrEnum):
    manual = "manual"  # POST /v1/suppressions
    lead_deleted = "lead_deleted"  # DELETE /v1/leads/{id}
    unsubscribed = "unsubscribed"  # unsubscribe link, or interest_status set to unsubscribed
    bounced = "bounced"  # hard bounce
    complained = "complained"  # spam complaint


class Suppression(IdMixin, TenantMixin, Base):
    __tablename__ = "suppressions"
    id_prefix = "sup"
    __tenant_table_args__ = (UniqueConstraint("workspace_id", "livemode", "type", "value"),)

    type: Mapped[str] = mapped_column(String(8))
    # A lower-cased address, or a lower-cased domain (exact match: sub-domains are separate entries).
    value: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
