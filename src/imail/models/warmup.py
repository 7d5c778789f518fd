"""Warmup: each inbox's ramp settings and pause state, one row per warmup email (the sender's record of where
it landed), and daily counts per inbox (what the inbox analytics report and health_score read)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base, IdMixin, TenantMixin


class WarmupKind(StrEnum):
    first = "first"  # starts a thread: counts against the ramp
    reply = "reply"  # the recipient's answer in that thread


class WarmupMessageStatus(StrEnum):
    queued = "queued"  # a reply waiting for its due time
    sending = "sending"  # claimed; being handed to SMTP
    sent = "sent"
    bounced = "bounced"  # refused for the recipient (5xx)
    failed = "failed"  # not handed over (4xx, connection, the replier left the pool): not counted as sent


class Placement(StrEnum):
    inbox = "inbox"
    spam = "spam"


class InboxWarmup(TenantMixin, Base):
    """One inbox's ramp (settable through the API) and its pause bookkeeping. Absent until warmup is first
    started or configured; the defaults below apply then."""

    __tablename__ = "inbox_warmup"
    __tenant_key__ = "inbox_id"
    __tenant_table_args__ = (
        Index(
            "ix_inbox_warmup_next_send_at",
            "next_send_at",
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
    )

    inbox_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    start_volume: Mapped[int] = mapped_column(Integer, default=2)
    daily_increment: Mapped[int] = mapped_column(Integer, default=2)
    ceiling: Mapped[int] = mapped_column(Integer, default=40)
    weekdays_only: Mapped[bool] = mapped_column(Boolean, default=False)
    enable_slow_ramp: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_rate: Mapped[float] = mapped_column(Float, default=0.3)
    # Mirrors inboxes.warmup_status == active, so the worker's due query is one partial index range.
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    next_send_at: Mapped[datetime | None] = mapped_column()
    last_pause_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime | None] = mapped_column()


class WarmupMessage(IdMixin, TenantMixin, Base):
    """One warmup email, owned by its sender's workspace and ledger; the recipient's reader fills in
    `placement`."""

    __tablename__ = "warmup_messages"
    id_prefix = "wrm"
    __tenant_table_args__ = (
        Index(None, "message_id_header", unique=True),
        Index(None, "inbox_id", "sent_at"),
        Index(
            "ix_warmup_messages_queued",
            "due_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
    )

    inbox_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"))
    recipient_inbox_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="SET NULL")
    )
    from_email: Mapped[str] = mapped_column(String(320))
    to_email: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(8))
    parent_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))  # a reply's first message
    subject: Mapped[str] = mapped_column(Text)
    message_id_header: Mapped[str] = mapped_column(String(255))
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(8))
    placement: Mapped[str | None] = mapped_column(String(8))
    replied: Mapped[bool] = mapped_column(Boolean, default=False)  # a reply to it was received
    day: Mapped[date] = mapped_column(Date)  # the UTC day it counts under (claim day)
    due_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    placed_at: Mapped[datetime | None] = mapped_column()


WARMUP_COUNTERS = ("sent", "replies_sent", "inbox", "spam", "replies_received", "bounced")


class WarmupDaily(TenantMixin, Base):
    """Per inbox and UTC day (of the send): warmup emails started (`sent`) and replies sent, where they
    landed, the replies that came back, and bounces. Written in the same transaction as each change."""

    __tablename__ = "warmup_daily"
    __tenant_key__ = "day"
    __tenant_table_args__ = (PrimaryKeyConstraint("inbox_id", "day"),)

    inbox_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    replies_sent: Mapped[int] = mapped_column(Integer, default=0)
    inbox: Mapped[int] = mapped_column(Integer, default=0)
    spam: Mapped[int] = mapped_column(Integer, default=0)
    replies_received: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
