from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field
from typing_extensions import TypeAliasType

from imail.kit.schemas import RequestModel, ResponseModel
from imail.models.reply import ReplyLabel

# Named aliases: one schema component each, so generated clients get one well-named enum per concept.
ReplyDirection = TypeAliasType("ReplyDirection", Literal["inbound", "outbound"])
LabelSource = TypeAliasType(
    "LabelSource", Literal["rules", "model", "remote", "auto_reply", "empty", "manual"]
)
ReplyStatus = TypeAliasType("ReplyStatus", Literal["received", "sent", "recorded"])


class Reply(ResponseModel):
    """A message in a lead's thread after our emails: read from one of our inboxes (`inbound`), or our own
    answer (`outbound`, POST /v1/leads/{id}/reply)."""

    id: str
    object: Literal["reply"] = "reply"
    direction: ReplyDirection
    campaign_id: str
    lead_id: str
    inbox_id: str
    message_id: str | None = Field(description="Our email (`msg_…`) it answers, or that our answer follows.")
    from_email: str
    from_name: str
    to_emails: list[str]
    subject: str
    reply_text: str = Field(description="The new text: quoted history and signature cut.")
    label: ReplyLabel | None = Field(description="`null` for outbound.")
    confidence: float | None
    label_source: LabelSource | None = Field(
        description="What decided the label: a phrase rule, the local model, the configured endpoint, the "
        "auto-reply detector, or a correction (`manual`)."
    )
    auto_reply: bool = Field(
        description="Sent by a machine (out-of-office, autoresponder): not counted as a reply."
    )
    out_of_office: bool
    return_date: date | None = Field(description="When an out-of-office says its sender is back.")
    folder: str | None = Field(description="The IMAP folder it was read from (INBOX, or the spam folder).")
    status: ReplyStatus = Field(
        description="`received` (inbound), `sent` (outbound, handed to SMTP), `recorded` (outbound in test "
        "mode)."
    )
    livemode: bool
    received_at: datetime = Field(description="Its Date header (inbound), or when it was sent (outbound).")
    created_at: datetime
    updated_at: datetime


class ThreadItem(BaseModel):
    """One email of the thread, oldest first: ours (`message`) or a reply (`reply`)."""

    object: Literal["message", "reply"]
    id: str
    direction: ReplyDirection
    from_email: str
    to_email: str
    subject: str
    at: datetime
    status: str
    step: int | None = Field(None, description="Our emails: 1-based step of the campaign.")
    label: ReplyLabel | None = None
    auto_reply: bool = False
    text: str | None = Field(None, description="Replies: the new text. Our emails' bodies are not stored.")


class ReplyDetail(Reply):
    rfc_message_id: str | None = Field(description="Its Message-ID header.")
    in_reply_to: str | None
    reference_ids: list[str] = Field(description="Its References header, oldest first.")
    headers: dict[str, list[str]] = Field(description="Lower-cased header name → decoded values (inbound).")
    text: str = Field(description="The whole plain-text body.")
    thread: list[ThreadItem] = Field(description="Every email between us and the lead, oldest first.")


class ReplyUpdate(RequestModel):
    """Correct a reply's label; the lead's interest_status follows."""

    label: ReplyLabel


class LeadReplyCreate(RequestModel):
    """An answer to the lead, sent in the thread from the inbox that wrote to them."""

    text: str = Field(min_length=1, max_length=50_000, description="The plain-text body.")
    html: str | None = Field(None, max_length=200_000, description="An HTML alternative of the same text.")
    subject: str | None = Field(None, max_length=998, description="Default: `Re: ` and the thread's subject.")
