"""Replies: messages in a lead's thread after our emails — what the lead (or a machine on their behalf) wrote
back, read over IMAP, and our own answers sent with `POST /v1/leads/{id}/reply`."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from imail.kit.clock import utcnow
from imail.models.base import ID_LENGTH, Base, IdMixin, TenantMixin


class ReplyDirection(StrEnum):
    inbound = "inbound"  # read from one of our inboxes
    outbound = "outbound"  # our answer, POST /v1/leads/{id}/reply


class ReplyLabel(StrEnum):
    interested = "interested"
    not_interested = "not_interested"
    meeting_booked = "meeting_booked"
    out_of_office = "out_of_office"
    wrong_person = "wrong_person"
    unsubscribe_request = "unsubscribe_request"
    neutral = "neutral"


class Reply(IdMixin, TenantMixin, Base):
    __tablename__ = "replies"
    id_prefix = "rpl"
    __tenant_table_args__ = (
        # The unified inbox's filters, each walked newest first by id.
        Index(None, "workspace_id", "livemode", "campaign_id", "id"),
        Index(None, "workspace_id", "livemode", "inbox_id", "id"),
        Index(None, "lead_id", "received_at"),
    )

    direction: Mapped[str] = mapped_column(String(8), default=ReplyDirection.inbound.value)
    campaign_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    lead_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("leads.id", ondelete="CASCADE"))
    inbox_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"))
    # The email of ours this one answers (inbound), or the one our answer follows (outbound).
    message_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("messages.id", ondelete="SET NULL")
    )
    rfc_message_id: Mapped[str | None] = mapped_column(Text)  # its own Message-ID header
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    reference_ids: Mapped[list[str]] = mapped_column()  # its References header, oldest first
    from_email: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(320), default="")
    to_emails: Mapped[list[str]] = mapped_column()
    subject: Mapped[str] = mapped_column(Text, default="")
    headers: Mapped[dict[str, Any]] = mapped_column()  # lower-cased name → decoded values (inbound only)
    text: Mapped[str] = mapped_column(Text, default="")  # the whole plain-text body
    reply_text: Mapped[str] = mapped_column(
        Text, default=""
    )  # the new text: quoted history and signature cut
    label: Mapped[str | None] = mapped_column(String(24))  # ReplyLabel; NULL for outbound
    confidence: Mapped[float | None] = mapped_column(Float)
    label_source: Mapped[str | None] = mapped_column(
        String(16)
    )  # rules | model | remote | auto_reply | manual
    auto_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    out_of_office: Mapped[bool] = mapped_column(Boolean, default=False)
    return_date: Mapped[date | None] = mapped_column(Date)
    folder: Mapped[str | None] = mapped_column(String(255))  # the IMAP folder it was read from
    status: Mapped[str] = mapped_column(
        String(16), default="received"
    )  # received | sent | recorded (test mode)
    received_at: Mapped[datetime] = mapped_column()  # its Date header (inbound; else when read) or when sent
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
