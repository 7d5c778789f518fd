from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from imail.kit.schemas import ResponseModel


class Message(ResponseModel):
    """One email of a sequence: what was sent, when, from which inbox, which step and variant."""

    id: str
    object: Literal["message"] = "message"
    campaign_id: str
    lead_id: str
    inbox_id: str | None = Field(description="null once the inbox has been deleted.")
    step: int = Field(validation_alias="step_number", description="1-based step of the campaign.")
    variant: str | None = Field(description="A/B variant label, when the step has variants.")
    to_email: str
    subject: str
    message_id_header: str = Field(description="The RFC 5322 Message-ID the email carried.")
    in_reply_to: str | None
    status: Literal["sending", "retry", "sent", "bounced", "failed", "unknown"]
    attempts: int
    smtp_response: str | None
    livemode: bool
    created_at: datetime
    sent_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None

    @field_validator("status", mode="before")
    @classmethod
    def _public_status(cls, value: str) -> str:
        # `handed` (DATA about to go out, or in doubt after a crash) is the engine's internal step of
        # `sending`.
        return "sending" if value == "handed" else value
