"""The public event types (the reference's eleven, and those later snapshots added), each with its payload
schema (documented in the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from typing_extensions import TypeAliasType


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmailRef(Payload):
    """Which sent email an event is about."""

    message_id: str
    campaign_id: str | None = None
    lead_id: str | None = None
    inbox_id: str | None = None
    email: str | None = None
    step: int | None = None
    variant: str | None = None


class EmailSent(EmailRef):
    smtp_message_id: str | None = None
    subject: str | None = None
    # False when the email was handed to the SMTP server as its worker died and nothing (the server's answer,
    # the Sent folder) confirms it arrived: it is not resent, and the sequence moves on as if it had been
    # sent.
    confirmed: bool = True
    detail: str | None = None


class EmailDelivered(EmailRef):
    detail: str | None = None


class EmailOpened(EmailRef):
    machine: bool = False
    user_agent: str | None = None


class EmailClicked(EmailRef):
    url: str
    machine: bool = False
    user_agent: str | None = None


class EmailBouncedHard(EmailRef):
    status_code: str | None = None
    diagnostic: str | None = None


class EmailBouncedSoft(EmailRef):
    category: Literal["mailbox_full", "greylisted", "policy", "temporary", "unknown"] = "unknown"
    status_code: str | None = None
    diagnostic: str | None = None
    will_retry: bool = True


class ReplyReceived(Payload):
    reply_id: str
    message_id: str | None = None
    campaign_id: str | None = None
    lead_id: str | None = None
    inbox_id: str | None = None
    from_email: str
    subject: str | None = None
    received_at: datetime | None = None


class ReplyClassified(Payload):
    reply_id: str
    lead_id: str | None = None
    campaign_id: str | None = None
    label: str
    confidence: float


class WarmupThresholdPaused(Payload):
    inbox_id: str
    reason: str
    spam_rate: float | None = None
    bounce_rate: float | None = None


# A named alias is one schema component, so generated clients get one well-named enum.
ConnectionSide = TypeAliasType("ConnectionSide", Literal["smtp", "imap", "both"])


class InboxConnection(Payload):
    inbox_id: str
    email: str
    side: ConnectionSide | None = None
    detail: str | None = None


class DeprecatedUse(Payload):
    """One API key's use of the deprecated thing."""

    key_id: str
    key_name: str
    count: int
    first_used_at: datetime
    last_used_at: datetime


class ApiDeprecationWarning(Payload):
    """Something this workspace's integrations use stops working on `sunset`; sent monthly from six months
    before (with an email to the workspace's contact address). `target` is `METHOD /path`, `METHOD /path
    field` or an event type."""

    kind: Literal["route", "field", "event"]
    target: str
    deprecated_on: date
    sunset: date
    note: str
    keys: list[DeprecatedUse]


class EmailAutoReplied(EmailRef):
    """An automatic answer (out-of-office and the like) to a sent email."""

    reply_id: str
    out_of_office: bool = False


UnsubscribeSource = TypeAliasType("UnsubscribeSource", Literal["one_click", "link", "mailto", "reply", "api"])


class LeadUnsubscribed(Payload):
    """A lead asked not to be contacted again (or the workspace suppressed its address through the API): its
    address is suppressed and its sequences stop. `source` says through which channel; the email fields name
    the sent email it answered, when there is one."""

    email: str
    source: UnsubscribeSource
    lead_id: str | None = None
    campaign_id: str | None = None
    inbox_id: str | None = None
    message_id: str | None = None
    step: int | None = None
    variant: str | None = None


SendingPauseReason = TypeAliasType("SendingPauseReason", Literal["bounce_rate", "smtp_policy", "manual"])


class InboxSendingPaused(Payload):
    """An inbox's campaign sending paused: its hard-bounce rate passed the threshold, its provider rejected it
    on policy (SMTP 5.7.x), or someone paused it by hand. `POST /v1/inboxes/{id}/sending/resume` resumes
    it."""

    inbox_id: str
    email: str
    reason: SendingPauseReason
    detail: str | None = None
    bounce_rate: float | None = None
    sends_considered: int | None = None


JobStatus = TypeAliasType("JobStatus", Literal["succeeded", "failed", "cancelled"])


class JobCompleted(Payload):
    """A background job (import, verification, export, bulk tag change) finished; `GET /v1/jobs/{id}` has the
    rest."""

    job_id: str
    kind: str
    status: JobStatus
    total: int
    done: int
    failed: int = 0


EVENT_TYPES: dict[str, type[Payload]] = {
    "email.sent": EmailSent,
    "email.delivered": EmailDelivered,
    "email.opened": EmailOpened,
    "email.clicked": EmailClicked,
    "email.bounced.hard": EmailBouncedHard,
    "email.bounced.soft": EmailBouncedSoft,
    "reply.received": ReplyReceived,
    "reply.classified": ReplyClassified,
    "warmup.threshold_paused": WarmupThresholdPaused,
    "inbox.disconnected": InboxConnection,
    "inbox.reconnected": InboxConnection,
    "api.deprecation_warning": ApiDeprecationWarning,
    "lead.unsubscribed": LeadUnsubscribed,
    "inbox.sending_paused": InboxSendingPaused,
    "job.completed": JobCompleted,
}

EventType = Literal[
    "email.sent",
    "email.delivered",
    "email.opened",
    "email.clicked",
    "email.bounced.hard",
    "email.bounced.soft",
    "reply.received",
    "reply.classified",
    "warmup.threshold_paused",
    "inbox.disconnected",
    "inbox.reconnected",
    "api.deprecation_warning",
    "lead.unsubscribed",
    "inbox.sending_paused",
    "job.completed",
]

# Facts the log keeps for analytics (auto-replied and unsubscribed counts, rebuilt from the log like the rest)
# that are not among the reference's eleven event types: never delivered to webhooks, never listed as
# subscribable. `*.repeat`: a hit of a pixel or link within a minute of its last open/click event
# (tracking.service), counted in the totals like one but not an event of its own.
INTERNAL_EVENT_TYPES: dict[str, type[Payload]] = {
    "email.auto_replied": EmailAutoReplied,
    "email.opened.repeat": EmailOpened,
    "email.clicked.repeat": EmailClicked,
}

ALL_EVENT_TYPES: dict[str, type[Payload]] = {**EVENT_TYPES, **INTERNAL_EVENT_TYPES}
