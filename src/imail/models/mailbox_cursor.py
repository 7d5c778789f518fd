"""The IMAP reader's bookkeeping: where it is in each folder, when each inbox is read next (and by whom), and
which inbound messages it has already acted on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base


class MailboxCursor(Base):
    """The last UID read in one folder of one inbox, valid for one UIDVALIDITY (RFC 3501 §2.3.1.1): a UID
    means nothing once the server changes the folder's UIDVALIDITY, so the reader then finds its place again
    by date."""

    __tablename__ = "mailbox_cursors"

    inbox_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    folder: Mapped[str] = mapped_column(
        String(255), primary_key=True
    )  # as the server lists it (modified UTF-7)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)  # 32-bit unsigned on the wire
    last_uid: Mapped[int] = mapped_column(BigInteger)
    # When the reader last caught up with the whole folder: the horizon it searches back to after a
    # UIDVALIDITY change.
    synced_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class MailboxPoll(Base):
    """When an inbox is read next, and the lease of the worker reading it (one reader per inbox at a time)."""

    __tablename__ = "mailbox_polls"
    __table_args__ = (Index(None, "next_poll_at"),)

    inbox_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    next_poll_at: Mapped[datetime | None] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column()
    # The worker that read it last; it keeps the IMAP connection (IDLE-ing when `idle`), others close theirs.
    worker_id: Mapped[str | None] = mapped_column(String(120))
    idle: Mapped[bool] = mapped_column(Boolean, default=False)
    polled_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)


class InboundReceipt(Base):
    """One inbound message the reader acted on (a reply, auto-reply, bounce or delivery report matched to one
    of our emails): the same message read again — from another folder, another inbox, or after a UIDVALIDITY
    change — is recognised by its key and never acted on twice."""

    __tablename__ = "inbound_receipts"
    __table_args__ = (Index(None, "message_id", "kind"),)

    # sha256 of (workspace, ledger, Message-ID), or of the raw bytes for a message without a Message-ID.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    inbox_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("inboxes.id", ondelete="CASCADE"), index=True
    )
    # reply | auto_reply | bounce_hard | bounce_soft | delivered | delayed
    kind: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("messages.id", ondelete="SET NULL")
    )
    reply_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column()
