from __future__ import annotations

from datetime import date
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel
from typing_extensions import TypeAliasType

from imail.warmup.schemas import WarmupCounts


class Counts(BaseModel):
    """Raw counts (compute rates yourself). `opened`/`clicked` count every open/click, `*_machine` those
    flagged as machine (scanners, proxies), `*_unique` the first human open/click of each email; `replied`
    counts real replies, `auto_replied` automatic answers (out-of-office…); `unsubscribed` recipients who
    unsubscribed through an email."""

    sent: int
    delivered: int
    opened: int
    opened_unique: int
    opened_machine: int
    clicked: int
    clicked_unique: int
    clicked_machine: int
    replied: int
    bounced_hard: int
    bounced_soft: int
    auto_replied: int
    unsubscribed: int
    interested: int
    meeting_booked: int


class DayCounts(Counts):
    day: date


class StepCounts(Counts):
    step: int | None
    variant: str | None


TotalsT = TypeVar("TotalsT", bound=Counts)
DayT = TypeVar("DayT", bound=Counts)  # a Counts with its day


class Report(BaseModel, Generic[TotalsT, DayT]):
    from_: date
    to: date
    timezone: Literal["UTC"]
    totals: TotalsT
    days: list[DayT]

    model_config = {
        "populate_by_name": True,
        "alias_generator": lambda name: "from" if name == "from_" else name,
    }


class CampaignAnalytics(Report[Counts, DayCounts]):
    campaign_id: str
    steps: list[StepCounts]


class InboxCounts(Counts, WarmupCounts):
    pass


class InboxDayCounts(InboxCounts):
    day: date


class InboxAnalytics(Report[InboxCounts, InboxDayCounts]):
    """Campaign counts of emails sent from the inbox, and its warmup (`warmup_*`) per day."""

    inbox_id: str


class WorkspaceAnalytics(Report[Counts, DayCounts]):
    pass


class FunnelCounts(BaseModel):
    """The reference's funnel: `opened` counts emails a person opened (unique, machine opens left out),
    `meeting` replies labelled `meeting_booked`. The campaign and workspace reports carry every counter."""

    sent: int
    opened: int
    replied: int
    interested: int
    meeting: int


class FunnelDay(FunnelCounts):
    day: date


# A named alias is one schema component, so generated clients get one well-named enum.
FunnelStageName = TypeAliasType(
    "FunnelStageName", Literal["sent", "opened", "replied", "interested", "meeting"]
)


class FunnelStage(BaseModel):
    stage: FunnelStageName
    count: int


class Funnel(BaseModel):
    campaign_id: str | None
    from_: date
    to: date
    timezone: Literal["UTC"]
    stages: list[FunnelStage]
    totals: FunnelCounts
    days: list[FunnelDay]

    model_config = {
        "populate_by_name": True,
        "alias_generator": lambda name: "from" if name == "from_" else name,
    }
