"""The sending engine's tables: per-lead sequence state, one row per email attempt, and the counters
that make campaign and inbox limits enforceable at claim time."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base, IdMixin, TenantMixin


class SequenceStatus(StrEnum):
    scheduled = "scheduled"  # waiting for `scheduled_at`
    sending = "sending"  # an attempt is in flight
    finished = "finished"  # every step sent
    stopped = "stopped"  # see stop_reason


class StopReason(StrEnum):
    replied = "replied"
    bounced = "bounced"
    unsubscribed = "unsubscribed"
    suppressed = "suppressed"
    company_replied = "company_replied"
    delivery_unknown = "delivery_unknown"
    failed = "failed"
    verification = "verification"  # the lead's verification result is one its campaign skips


class SequenceState(TenantMixin, Base):
    """Where one lead is in its campaign. `due_at` is `scheduled_at` while the lead can be sent to and the
    campaign is active, else NULL — so the one due query (an index range on due_at) never sees the rest."""

    __tablename__ = "sequence_states"
    __tenant_key__ = "lead_id"
    __tenant_table_args__ = (
        Index(
            "ix_sequence_states_due",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL"),
            sqlite_where=text("due_at IS NOT NULL"),
        ),
        Index(None, "campaign_id", "status"),
        # A campaign's due states, oldest first: a backlog's claim takes a share of each campaign's
        # (SendQueue.lock_due).
        Index(
            "ix_sequence_states_campaign_due",
            "campaign_id",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL"),
            sqlite_where=text("due_at IS NOT NULL"),
        ),
    )

    lead_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default=SequenceStatus.scheduled.value)
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    inbox_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))  # sent step 1; follow-ups go from it
    last_sent_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime | None] = mapped_column()


class MessageStatus(StrEnum):
    sending = "sending"  # recorded and claimed; not yet handed to SMTP
    handed = "handed"  # the DATA command went out: the server may have it, whatever happens next
    retry = "retry"  # temporary failure; the lead's state is due again later
    sent = "sent"  # the SMTP server accepted it
    bounced = "bounced"  # refused for the recipient (5xx), or a hard DSN came back
    failed = "failed"  # gave up (retries exhausted, inbox gone)
    unknown = "unknown"  # handed over during a crash and not found in the Sent folder: never resent


class Message(IdMixin, TenantMixin, Base):
    """One email of a sequence. (lead, step) is unique: the database itself refuses a second send of a
    step."""

    __tablename__ = "messages"
    id_prefix = "msg"
    __tenant_table_args__ = (
        UniqueConstraint("lead_id", "step_index"),
        UniqueConstraint("message_id_header"),
        Index(None, "status", "lease_until"),
        Index(None, "campaign_id", "id"),
        Index(None, "inbox_id", "sent_at"),
        Index(None, "inbox_id", "created_at"),  # an inbox's latest sends, for bounce protection
    )

    campaign_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    lead_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("leads.id", ondelete="CASCADE"))
    # SET NULL: deleting an inbox keeps its history (and with it the (lead, step) guard against resending).
    inbox_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="SET NULL")
    )
    step_index: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str | None] = mapped_column(String(32))
    to_email: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    message_id_header: Mapped[str] = mapped_column(String(255))
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.sending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column()
    worker_id: Mapped[str | None] = mapped_column(String(120))
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_response: Mapped[str | None] = mapped_column(Text)
    links: Mapped[list[str] | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    opened_at: Mapped[datetime | None] = mapped_column()
    clicked_at: Mapped[datetime | None] = mapped_column()

    @property
    def step_number(self) -> int:
        return self.step_index + 1


class SendCounter(Base):
    """Sends per UTC day for one campaign or inbox, incremented in the claim transaction under a row lock."""

    __tablename__ = "send_counters"

    scope_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)


class InboxPacing(Base):
    """When an inbox may send next (its sending gap plus a random extra wait)."""

    __tablename__ = "inbox_pacing"

    inbox_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    last_sent_at: Mapped[datetime | None] = mapped_column()
    next_send_at: Mapped[datetime | None] = mapped_column()
