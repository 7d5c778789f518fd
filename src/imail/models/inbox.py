"""Sending mailboxes: a custom SMTP/IMAP pair or a Google/Microsoft account reached through OAuth (XOAUTH2).

Secrets (the two passwords, the OAuth refresh token) are stored only as Fernet tokens (`*_encrypted`,
see imail.kit.crypto); nothing in this table is ever serialized to the API as is.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import Base, IdMixin, TenantMixin, TimestampMixin
from imail.models.tracking import TrackingDomainColumns


class InboxStatus(StrEnum):
    setup_pending = "setup_pending"  # OAuth inbox waiting for the provider's callback
    connected = "connected"
    disconnected = "disconnected"


class InboxProvider(StrEnum):
    custom = "custom"
    google = "google"
    microsoft = "microsoft"


class Security(StrEnum):
    ssl = "ssl"  # implicit TLS from the first byte (SMTPS 465, IMAPS 993)
    starttls = "starttls"
    none = "none"


class BackoffCause(StrEnum):
    """Who made the inbox's sending back off (imail.inboxes.backoff)."""

    smtp = "smtp"  # its submission server throttled it (421, 4.7.x)
    oauth = "oauth"  # its OAuth token endpoint failed (5xx, 429, unreachable)


class WarmupStatus(StrEnum):
    off = "off"
    active = "active"
    paused = "paused"


class Inbox(IdMixin, TimestampMixin, TenantMixin, TrackingDomainColumns, Base):
    __tablename__ = "inboxes"
    id_prefix = "inb"
    __tenant_table_args__ = (
        UniqueConstraint("workspace_id", "livemode", "email"),
        Index(None, "status"),
    )

    provider: Mapped[str] = mapped_column(String(16), default=InboxProvider.custom.value)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(120), default="")  # sender display name
    signature: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=InboxStatus.connected.value)
    daily_limit: Mapped[int] = mapped_column(Integer, default=50)
    sending_gap_minutes: Mapped[int] = mapped_column(Integer, default=10)

    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int | None] = mapped_column(Integer)
    smtp_security: Mapped[str | None] = mapped_column(String(16))
    smtp_username: Mapped[str | None] = mapped_column(String(320))
    smtp_password_encrypted: Mapped[str | None] = mapped_column(Text)

    imap_host: Mapped[str | None] = mapped_column(String(255))
    imap_port: Mapped[int | None] = mapped_column(Integer)
    imap_security: Mapped[str | None] = mapped_column(String(16))
    imap_username: Mapped[str | None] = mapped_column(String(320))
    imap_password_encrypted: Mapped[str | None] = mapped_column(Text)

    # OAuth (google / microsoft): the refresh token, encrypted; access tokens are minted on demand.
    oauth_refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    # Random nonce bound into the signed `state`; cleared once the callback has been used (one-shot).
    oauth_state_nonce: Mapped[str | None] = mapped_column(String(64))

    warmup_status: Mapped[str] = mapped_column(String(16), default=WarmupStatus.off.value)
    warmup_started_at: Mapped[datetime | None] = mapped_column()

    # Connection monitor bookkeeping.
    last_checked_at: Mapped[datetime | None] = mapped_column()
    status_changed_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_side: Mapped[str | None] = mapped_column(String(8))  # "smtp" | "imap"

    # The IMAP reader's failures: reads failed in a row (a good read clears them and the last error; at
    # `inbound_read_failure_limit` the inbox is disconnected), and the last crash of imail's own code whose
    # traceback was logged for this inbox (a fingerprint: the same crash again is logged in one line).
    read_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_read_error: Mapped[str | None] = mapped_column(Text)
    last_read_error_at: Mapped[datetime | None] = mapped_column()
    read_crash_logged: Mapped[str | None] = mapped_column(String(64))

    # Campaign sending paused (imail.inboxes.pausing): by bounce protection, an SMTP policy rejection (5.7.x)
    # or by hand; the sending engine skips the inbox until it is resumed. `sending_resumed_at` starts bounce
    # protection's window again: only emails claimed after it count.
    sending_paused_at: Mapped[datetime | None] = mapped_column()
    sending_paused_reason: Mapped[str | None] = mapped_column(
        String(16)
    )  # bounce_rate | smtp_policy | manual
    sending_paused_detail: Mapped[str | None] = mapped_column(Text)
    sending_resumed_at: Mapped[datetime | None] = mapped_column()

    @property
    def sending_paused(self) -> bool:
        return self.sending_paused_at is not None

    # The submission server throttling this inbox (421, 4.7.x "slow down"), or its OAuth token endpoint
    # failing (a 5xx, unreachable): no sends until `send_backoff_until`, the wait doubling with each failure
    # that follows soon after the last (imail.inboxes.backoff). `send_backoff_cause` says which ("smtp",
    # "oauth"): while the token endpoint's wait runs, no login of the inbox asks it for a token either.
    send_backoff_until: Mapped[datetime | None] = mapped_column()
    send_backoff_reason: Mapped[str | None] = mapped_column(Text)
    send_backoffs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    send_backoff_cause: Mapped[str | None] = mapped_column(String(8))

    # The Sent folder (imail.inboxes.sent_folder): `auto` appends what imail sends to Sent when the provider
    # turned out not to file SMTP submissions itself (`sent_filed_by_provider`, learned after the first sends;
    # None: not known yet); `append` always appends, `provider` never does.
    sent_folder_mode: Mapped[str] = mapped_column(String(16), default="auto", server_default="auto")
    sent_filed_by_provider: Mapped[bool | None] = mapped_column(Boolean)

    @property
    def sending_backoff(self) -> dict | None:
        """The latest backoff as the API shows it (None: the server never throttled this inbox)."""
        if self.send_backoff_until is None:
            return None
        return {
            "reason": self.send_backoff_reason or "",
            "next_attempt_at": self.send_backoff_until,
            "throttles_in_a_row": self.send_backoffs,
        }
