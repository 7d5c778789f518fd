from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, field_validator
from typing_extensions import TypeAliasType

from imail.events.types import SendingPauseReason
from imail.kit.schemas import RequestModel, ResponseModel
from imail.tracking_domains.schemas import (
    DOMAIN_DESCRIPTION,
    TrackingDomain,
    TrackingDomainCheckedAt,
    TrackingDomainReason,
    TrackingDomainStatusName,
)
from imail.warmup.schemas import WarmupSettings, WarmupView

# Named aliases: one schema component each, so generated clients get one well-named enum per concept.
InboxProvider = TypeAliasType("InboxProvider", Literal["custom", "google", "microsoft"])
ConnectionSecurity = TypeAliasType("ConnectionSecurity", Literal["ssl", "starttls", "none"])
InboxStatus = TypeAliasType("InboxStatus", Literal["setup_pending", "connected", "disconnected"])
WarmupStatus = TypeAliasType("WarmupStatus", Literal["off", "active", "paused"])

MAX_GAP_MINUTES = 1440


def _port(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 65535:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


def _gap(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= MAX_GAP_MINUTES:
        raise ValueError(f"must be between 0 and {MAX_GAP_MINUTES} minutes (24 h)")
    return value


def _positive(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ValueError("must be at least 1")
    return value


def _host(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise ValueError("must be a host name or IP address, such as smtp.example.com")
    return value


Port = Annotated[int | None, AfterValidator(_port), Field(description="1–65535; default from the security")]
# Length limits sit on the `str` inside the Optional: on the union they would run on None and raise TypeError.
Host = Annotated[Annotated[str, Field(max_length=255)] | None, AfterValidator(_host)]
Gap = Annotated[int | None, AfterValidator(_gap)]
DailyLimit = Annotated[int | None, AfterValidator(_positive)]
Secret = Annotated[str, Field(max_length=1000)] | None


class _ServerFields(RequestModel):
    smtp_host: Host = Field(None, description="SMTP server, e.g. `smtp.example.com`.")
    smtp_port: Port = Field(None, description="Default: 465 for `ssl`, 587 for `starttls`, 25 for `none`.")
    smtp_security: ConnectionSecurity | None = Field(
        None,
        description=(
            "`ssl` (implicit TLS), `starttls` or `none`. Default: `ssl` on port 465, else `starttls`."
        ),
    )
    smtp_username: str | None = Field(None, max_length=320, description="Default: the inbox's email.")
    smtp_password: Secret = Field(None, description="Write-only; stored encrypted and never returned.")
    imap_host: Host = Field(None, description="IMAP server, e.g. `imap.example.com`.")
    imap_port: Port = Field(None, description="Default: 993 for `ssl`, 143 otherwise.")
    imap_security: ConnectionSecurity | None = Field(
        None,
        description=(
            "`ssl` (implicit TLS), `starttls` or `none`. Default: `starttls` on port 143, else `ssl`."
        ),
    )
    imap_username: str | None = Field(None, max_length=320, description="Default: the inbox's email.")
    imap_password: Secret = Field(None, description="Write-only; stored encrypted and never returned.")


SentFolderMode = TypeAliasType("SentFolderMode", Literal["auto", "append", "provider"])
SENT_FOLDER_MODE = (
    "Whether imail puts what it sends in the inbox's Sent folder (IMAP APPEND of the exact bytes sent, to "
    "the "
    "RFC 6154 `\\Sent` folder, else one with a usual name): `auto` (default) learns after the first sends "
    "whether "
    "the provider files SMTP submissions there itself (Gmail, Microsoft 365) and appends only where it does "
    "not; "
    "`append` always appends; `provider` never does."
)


class InboxCreate(_ServerFields):
    """Connect an inbox. Custom: both servers' settings and passwords (both logins are tried before
    answering). Google / Microsoft: only the address and sending settings; the answer carries a
    `setup_url`."""

    provider: InboxProvider = Field(
        "custom", description="`custom` (SMTP/IMAP with passwords), `google` or `microsoft` (OAuth)."
    )
    email: EmailStr = Field(description="The sending address; unique among a workspace's inboxes.")
    name: str = Field("", max_length=120, description="Sender display name.")
    signature: str = Field("", max_length=10_000)
    daily_limit: DailyLimit = Field(
        None, description="Emails per day from this inbox. Default 50; at most the tier's maximum."
    )
    sending_gap_minutes: Gap = Field(
        None, description="Minutes between two sends from this inbox, 0–1440. Default 10."
    )
    sent_folder_mode: SentFolderMode = Field("auto", description=SENT_FOLDER_MODE)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class InboxUpdate(_ServerFields):
    """Change an inbox. Changing any smtp_* or imap_* field logs in to both servers again before saving."""

    name: str | None = Field(None, max_length=120)
    signature: str | None = Field(None, max_length=10_000)
    daily_limit: DailyLimit = None
    sending_gap_minutes: Gap = None
    sent_folder_mode: SentFolderMode | None = Field(None, description=SENT_FOLDER_MODE)
    warmup: WarmupSettings | None = Field(
        None, description="Warmup ramp settings; fields left out keep their value."
    )
    tracking_domain: str | None = Field(
        None,
        max_length=300,
        description=DOMAIN_DESCRIPTION.format(owner="inbox") + " Overrides the workspace's tracking domain.",
    )


class SendingBackoff(BaseModel):
    reason: str = Field(
        description="The submission server's answer, e.g. `421 4.7.0 Try again later`, or what the token "
        "endpoint did, e.g. `Google's token endpoint failed: HTTP 503`."
    )
    next_attempt_at: datetime = Field(
        description="No email leaves the inbox before this; once it has passed, sending has resumed."
    )
    throttles_in_a_row: int = Field(
        ge=1,
        description="Throttles (or token endpoint failures) in one episode: the wait starts at a minute and "
        "doubles with each, up to an hour.",
    )


class Inbox(ResponseModel):
    id: str
    object: Literal["inbox"] = "inbox"
    provider: InboxProvider
    email: str
    name: str
    signature: str
    status: InboxStatus = Field(
        description="`setup_pending` (OAuth consent not given yet), `connected`, or `disconnected` (a login "
        "failed)."
    )
    setup_url: str | None = Field(
        None,
        description="OAuth inboxes that are not connected: open it to (re)grant access. Expires after an "
        "hour.",
    )
    health_score: int = Field(
        ge=0, le=100, description="0–100, from connection, bounces, replies and warmup placement (7 days)."
    )
    daily_limit: int
    sending_gap_minutes: int
    warmup_status: WarmupStatus
    warmup_started_at: datetime | None
    warmup: WarmupView = Field(
        description="Warmup ramp, today's target and sends, 7-day placement, last pause reason."
    )
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: ConnectionSecurity | None
    smtp_username: str | None
    imap_host: str | None
    imap_port: int | None
    imap_security: ConnectionSecurity | None
    imap_username: str | None
    last_error: str | None = Field(
        description="Why the last login failed, in the server's words (null when fine)."
    )
    last_checked_at: datetime | None
    read_failures: int = Field(
        ge=0,
        description="Reads of the inbox's mail over IMAP that failed in a row (0 after a read that worked). "
        "At "
        "`IMAIL_INBOUND_READ_FAILURE_LIMIT` (5) the inbox becomes `disconnected` until reconnected.",
    )
    last_read_error: str | None = Field(
        description="Why the latest of those reads failed, in imail's words plus the server's where it "
        "answered "
        "(null when the last read worked)."
    )
    last_read_error_at: datetime | None = Field(
        description="When that read failed (null when the last read worked)."
    )
    sending_paused: bool = Field(
        description="Campaign sending is paused: no campaign email leaves this inbox until "
        "`POST /v1/inboxes/{id}/sending/resume`. The inbox stays connected (replies and bounces are read, "
        "warmup "
        "goes on)."
    )
    sending_paused_reason: SendingPauseReason | None = Field(
        description="`bounce_rate` (its hard-bounce rate over its latest campaign sends passed the "
        "threshold), "
        "`smtp_policy` (its SMTP server refused a send on policy, 5.7.x) or `manual`; null while sending."
    )
    sending_paused_detail: str | None = Field(
        description="What paused it, in words (the rate, the SMTP answer)."
    )
    sending_paused_at: datetime | None
    tracking_domain: TrackingDomain
    tracking_domain_status: TrackingDomainStatusName
    tracking_domain_checked_at: TrackingDomainCheckedAt
    tracking_domain_reason: TrackingDomainReason
    sent_folder_mode: SentFolderMode = Field(description=SENT_FOLDER_MODE)
    sent_filed_by_provider: bool | None = Field(
        None,
        description="What imail learned after the first sends: whether the provider files SMTP submissions "
        "in Sent "
        "itself (null: not known yet).",
    )
    sending_backoff: SendingBackoff | None = Field(
        None,
        description="The latest time the submission server throttled this inbox (a 421, or a 4.7.x asking "
        "to slow down), or its OAuth provider's token endpoint failed (a 5xx, no answer): why, and when "
        "sending (and, for the token endpoint, reading) may resume. Its emails wait meanwhile; they are not "
        "failed. Null: never throttled.",
    )
    livemode: bool
    created_at: datetime
    updated_at: datetime


class InboxDeleted(BaseModel):
    id: str
    object: Literal["inbox"] = "inbox"
    deleted: Literal[True] = True
