from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base, IdMixin, TenantMixin, TimestampMixin


class WebhookEndpoint(IdMixin, TimestampMixin, TenantMixin, Base):
    """A URL that receives signed event deliveries; belongs to one workspace and one ledger."""

    __tablename__ = "webhook_endpoints"
    id_prefix = "wh"

    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    # Event types, or ["*"] for every type the endpoint's API version knows.
    events: Mapped[list[str]] = mapped_column()
    # The signing secret (`whsec_…`), Fernet-encrypted (kit.crypto, WEBHOOK_SECRETS): opened only to sign.
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    # The Imail-Version snapshot the endpoint was created under: it never receives event types added later.
    api_version: Mapped[date] = mapped_column(Date)
    # enabled | disabled | deleted (kept, invisible to the API, so a transaction that has just read the
    # endpoint can still add its delivery; purged with its delivery log after webhooks_retention_days)
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[datetime | None] = mapped_column()
    # First failed attempt with no success since; disabled when it is older than webhooks_disable_after.
    failing_since: Mapped[datetime | None] = mapped_column()


class WebhookDelivery(IdMixin, TimestampMixin, TenantMixin, Base):
    """One event owed to one endpoint: created with the event, claimed by workers under a lease, retried."""

    __tablename__ = "webhook_deliveries"
    id_prefix = "dlv"
    __tenant_table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index(None, "webhook_id", "id"),
        # The workers' claim: pending rows whose next attempt (or expired lease) is due.
        Index(None, "status", "next_attempt_at"),
    )

    webhook_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due time of the next attempt; while claimed, the end of the claim's lease. Null once final.
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    # The latest claim ("<worker instance>#<claim>"); outcomes are only recorded by the claim holding the row.
    claimed_by: Mapped[str | None] = mapped_column(String(160))
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    last_response: Mapped[str | None] = mapped_column(String(1000))
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
