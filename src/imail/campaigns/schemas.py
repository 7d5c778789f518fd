from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from typing_extensions import TypeAliasType

from imail.kit.schemas import RequestModel
from imail.models.campaign import CampaignStatus

MAX_STEPS = 20
MAX_VARIANTS = 10
MAX_INBOXES = 100
# A named alias is one schema component, so generated clients get one well-named enum.
Weekday = TypeAliasType("Weekday", Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = list(DAYS[:5])
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")

Condition = Literal["opened", "clicked", "not_opened", "not_clicked"]
DelayUnit = Literal["minutes", "hours", "days"]
UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}
MAX_DELAY_MINUTES = 365 * 1440


class Delay(RequestModel):
    """How long to wait before a step: after the lead is added (step 1) or after the previous step was
    sent."""

    amount: int = Field(0, ge=0, description="0–365 days' worth of the unit.")
    unit: DelayUnit = "days"

    @property
    def minutes(self) -> int:
        return self.amount * UNIT_MINUTES[self.unit]


class VariantIn(RequestModel):
    """An A/B variant: its own subject and/or body (what it leaves out comes from the step), and a weight."""

    subject: str | None = Field(None, max_length=500)
    body: str | None = Field(None, max_length=100_000)
    weight: int = Field(
        1, ge=1, le=100, description="Relative weight, 1–100: the chance is weight / sum of weights."
    )


class Variant(VariantIn):
    label: str = Field(description="`A`, `B`, … in the order given.")
    text: str | None = Field(
        description="The plain-text part derived from this variant's body (null if it has none)."
    )


class Branch(RequestModel):
    """Branch on the lead's behaviour with this step's email, judged when the next step's delay has passed."""

    condition: Condition = Field(
        description="`opened`, `clicked`, `not_opened` or `not_clicked`, within the delay."
    )
    next_step: int | None = Field(
        description="The step (1-based, after this one) to go to when the condition holds; null ends the "
        "sequence."
    )


class StepIn(RequestModel):
    subject: str | None = Field(
        None,
        max_length=500,
        description=(
            "Required on step 1. Follow-ups may leave it out: they reply in the first email's thread."
        ),
    )
    body: str | None = Field(
        None, max_length=100_000, description="HTML; a plain-text part is derived from it."
    )
    delay: Delay = Field(default_factory=Delay)
    variants: list[VariantIn] = Field(default_factory=list, description="None, or 2–10 A/B variants.")
    branches: list[Branch] = Field(
        default_factory=list, description="Checked in order; the first that holds wins."
    )


class Step(BaseModel):
    number: int = Field(description="1-based position in the sequence.")
    subject: str | None
    body: str | None
    text: str | None = Field(description="The plain-text part derived from the body.")
    delay: Delay
    variants: list[Variant]
    branches: list[Branch]


class SendWindow(RequestModel):
    """When emails may go out, in the lead's own zone (`lead`) or a fixed IANA zone."""

    timezone: str = Field(
        "lead", description="`lead` (each lead's own zone) or an IANA name like Europe/Paris."
    )
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    start: str = Field("09:00", description="HH:MM, local time.")
    end: str = Field("17:00", description="HH:MM, local time, after start (24:00 for midnight).")

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"must be a time like 09:00 (HH:MM, 24-hour); got {value!r}")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError('give at least one day, like ["mon", "tue"]')
        if len(set(value)) != len(value):
            raise ValueError("lists a day twice")
        return [d for d in DAYS if d in value]


def _steps_count(value: list) -> list:
    if not 1 <= len(value) <= MAX_STEPS:
        raise ValueError(f"a campaign has 1–{MAX_STEPS} steps; got {len(value)}")
    return value


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > 120:
        raise ValueError(f"must be at most 120 characters; got {len(value)}")
    return value


def _inboxes(value: list[str]) -> list[str]:
    if len(value) > MAX_INBOXES:
        raise ValueError(f"at most {MAX_INBOXES} inboxes per campaign; got {len(value)}")
    return value


SkipVerification = TypeAliasType("SkipVerification", Literal["none", "invalid", "risky"])


class CampaignCreate(RequestModel):
    name: str = Field(description="Display name, at most 120 characters.")
    inbox_ids: list[str] = Field(description="Inboxes to send from (this workspace's, this ledger's).")
    steps: list[StepIn] = Field(description="1–20 steps.")
    daily_limit: int | None = Field(
        None, description="Emails per day; default and maximum: the tier's limit."
    )
    send_window: SendWindow | None = Field(
        None, description="Default: 09:00–17:00 on weekdays in the lead's zone."
    )
    track_opens: bool = True
    track_clicks: bool = True
    stop_on_reply: bool = True
    text_only: bool = Field(
        False,
        description="Send one text/plain part: no HTML, no open pixel (so no open tracking), links as plain "
        "URLs "
        "(through the click redirect only when track_clicks is on).",
    )
    include_footer: bool = Field(
        False,
        description="Add the workspace's footer (its opt-out line and postal address, see PATCH "
        "/v1/workspace) to "
        "every email; needs the workspace's postal_address.",
    )
    custom_variables: list[str] = Field(
        default_factory=list,
        description="Names of lead custom_variables the steps use without a fallback, like `pain_point`.",
    )
    skip_verification: SkipVerification = Field(
        "none",
        description="Leads not to email after verification (POST /v1/leads/verify): `invalid` skips invalid "
        "ones, `risky` invalid and risky ones; their sequence stops. `none`: verification is not looked at. "
        "Leads never verified are emailed either way.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _name(value)

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, value: list[StepIn]) -> list[StepIn]:
        return _steps_count(value)

    @field_validator("inbox_ids")
    @classmethod
    def _check_inboxes(cls, value: list[str]) -> list[str]:
        return _inboxes(value)


class CampaignUpdate(RequestModel):
    """Fields to change; `steps` and `inbox_ids` replace the whole list."""

    name: str | None = None
    inbox_ids: list[str] | None = None
    steps: list[StepIn] | None = None
    daily_limit: int | None = None
    send_window: SendWindow | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None
    stop_on_reply: bool | None = None
    text_only: bool | None = None
    include_footer: bool | None = None
    custom_variables: list[str] | None = None
    skip_verification: SkipVerification | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else _name(value)

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, value: list[StepIn] | None) -> list[StepIn] | None:
        return None if value is None else _steps_count(value)

    @field_validator("inbox_ids")
    @classmethod
    def _check_inboxes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _inboxes(value)


class Campaign(BaseModel):
    id: str
    object: Literal["campaign"] = "campaign"
    name: str
    status: CampaignStatus
    inbox_ids: list[str]
    steps: list[Step]
    daily_limit: int
    send_window: SendWindow
    track_opens: bool
    track_clicks: bool
    stop_on_reply: bool
    text_only: bool
    include_footer: bool
    custom_variables: list[str]
    skip_verification: SkipVerification = "none"
    livemode: bool
    created_at: datetime
    updated_at: datetime
    sent_today: int = Field(description="Emails sent today (UTC day).")
    reply_rate_7d: float = Field(
        description="Replies / emails sent over the last 7 days (0 when none were sent)."
    )


class PreviewRequest(RequestModel):
    lead_id: str = Field(description="A lead of this campaign.")
    step: int = Field(1, ge=1, le=MAX_STEPS, description="1-based step number.")
    variant: str | None = Field(None, description="Variant label (`A`, `B`…); default: the first.")
    seed: int | None = Field(None, description="Spintax seed; the same seed gives the same choices.")


class Preview(BaseModel):
    object: Literal["preview"] = "preview"
    campaign_id: str
    lead_id: str
    step: int
    variant: str | None
    subject: str = Field(description="With `Re: ` and the first subject for follow-ups that thread.")
    body: str | None = Field(
        description="Rendered HTML (lead values HTML-escaped), with the footer when the campaign includes "
        "it; null "
        "for a text_only campaign, whose emails have no HTML part."
    )
    text: str = Field(description="The text/plain part (for a text_only campaign, all that is sent).")
    text_only: bool
    unsubscribe_url: str = Field(
        description="What {{unsubscribe_url}} renders as: a link of the signed https shape the email and its "
        "List-Unsubscribe header carry (in a preview it names no sent email, so it unsubscribes nobody)."
    )
    missing_variables: list[str] = Field(
        description="Variables the lead has no value for and the template gave no fallback (rendered empty "
        "here; "
        "rendering for a real send refuses such an email)."
    )
