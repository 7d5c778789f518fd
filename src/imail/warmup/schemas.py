from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from imail.kit.schemas import RequestModel


class WarmupSettings(RequestModel):
    """An inbox's warmup ramp. Send it in `PATCH /v1/inboxes/{id}` as `warmup`, or as the body of
    `POST /v1/inboxes/{id}/warmup/start`; fields left out keep their value."""

    start_volume: int | None = Field(
        None, ge=1, le=5000, description="Warmup emails on the first day. Default 2."
    )
    daily_increment: int | None = Field(
        None, ge=0, le=500, description="More each following (ramp) day. Default 2."
    )
    ceiling: int | None = Field(
        None,
        ge=1,
        le=5000,
        description="Most warmup emails a day. Default 40; never more than the inbox's daily_limit.",
    )
    weekdays_only: bool | None = Field(
        None, description="Send no warmup on Saturdays and Sundays (UTC). Default false."
    )
    enable_slow_ramp: bool | None = Field(
        None,
        description="Cap this inbox's campaign sends per day by today's warmup target while warmup is on. "
        "Default false.",
    )
    reply_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of this inbox's warmup emails that the recipient answers in thread. Default 0.3.",
    )


class WarmupToday(BaseModel):
    day: date
    target: int = Field(
        description="Warmup emails this inbox starts today (the ramp; 0 before start and on skipped days)."
    )
    sent: int = Field(description="Of those, sent so far (UTC day).")
    replies_sent: int = Field(
        description="Warmup replies this inbox sent today (they count towards daily_limit too)."
    )


class WarmupPlacement(BaseModel):
    inbox: int = Field(
        description="This inbox's warmup emails of the last 7 days found in the recipient's inbox."
    )
    spam: int = Field(description="… found in the recipient's spam folder (then moved out of it).")
    rate: float | None = Field(description="inbox / (inbox + spam); null without data.")


class WarmupView(BaseModel):
    status: Literal["off", "active", "paused"]
    started_at: datetime | None
    start_volume: int
    daily_increment: int
    ceiling: int
    weekdays_only: bool
    enable_slow_ramp: bool
    reply_rate: float
    today: WarmupToday
    placement_7d: WarmupPlacement
    last_pause_reason: str | None = Field(
        description="Why warmup last paused (a threshold, or a pause through the API)."
    )
    paused_at: datetime | None


class WarmupCounts(BaseModel):
    """Warmup figures of an inbox, by the UTC day its warmup emails were sent (never part of the campaign
    counts)."""

    warmup_sent: int = Field(description="Warmup emails started (the ramp).")
    warmup_replies_sent: int = Field(description="Warmup replies sent in other inboxes' threads.")
    warmup_inbox: int = Field(description="This inbox's warmup emails found in the recipient's inbox.")
    warmup_spam: int = Field(description="… found in the recipient's spam folder.")
    warmup_replies_received: int = Field(description="Replies received to this inbox's warmup emails.")
    warmup_bounced: int = Field(description="Warmup emails refused for the recipient.")
