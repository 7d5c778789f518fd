"""`/v1/analytics/…`: raw daily counts from the rollups, as JSON or (`?format=csv`) CSV with one row per
day."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response
from typing_extensions import TypeAliasType

from imail.analytics import reports
from imail.analytics.schemas import CampaignAnalytics, Funnel, InboxAnalytics, WorkspaceAnalytics
from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep

router = APIRouter(
    prefix="/analytics", tags=["Analytics"], dependencies=[Depends(require_scope("analytics"))]
)

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "JSON, or CSV with `?format=csv`",
    }
}


# A named alias is one schema component, so generated clients get one well-named enum.
ReportFormat = TypeAliasType("ReportFormat", Literal["json", "csv"])


class RangeQuery:
    def __init__(
        self,
        from_: Annotated[
            date | None,
            Query(alias="from", description="first day, inclusive (default: 29 days before `to`)"),
        ] = None,
        to: Annotated[date | None, Query(description="last day, inclusive (default: today)")] = None,
        timezone: Annotated[str, Query(description="days are UTC days; only `UTC` is accepted")] = "UTC",
        format: Annotated[
            ReportFormat, Query(description="`csv`: text/csv, a header row, one row per day")
        ] = "json",
    ):
        self.range = reports.date_range(from_, to, timezone)
        self.format = format


RangeDep = Annotated[RangeQuery, Depends()]


def _answer(
    report: dict[str, Any],
    model: Any,
    query: RangeQuery,
    name: str,
    columns: tuple[str, ...] = reports.COUNTERS,
) -> Any:
    if query.format == "csv":
        filename = f"{name}-{query.range.start}-{query.range.end}.csv"
        return Response(
            reports.to_csv(report, columns),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return model.model_validate(report).model_dump(mode="json", by_alias=True)


@router.get("/campaigns/{campaign_id}", response_model=CampaignAnalytics, responses=CSV_RESPONSE)
async def get_campaign_analytics(campaign_id: str, caller: CallerDep, session: SessionDep, query: RangeDep):
    """A campaign's counts: totals, per UTC day (every day of the range), per step and variant."""
    report = await reports.campaign_report(session, caller.tenant, campaign_id, query.range)
    return _answer(report, CampaignAnalytics, query, f"campaign-{campaign_id}")


@router.get("/inboxes/{inbox_id}", response_model=InboxAnalytics, responses=CSV_RESPONSE)
async def get_inbox_analytics(inbox_id: str, caller: CallerDep, session: SessionDep, query: RangeDep):
    """What was sent from an inbox and what came of it: totals and per UTC day, with its warmup (`warmup_*`:
    emails sent, replies sent, landed in inbox / spam, replies received, bounced — never part of the campaign
    counts)."""
    report = await reports.inbox_report(session, caller.tenant, inbox_id, query.range)
    return _answer(report, InboxAnalytics, query, f"inbox-{inbox_id}", reports.INBOX_COLUMNS)


@router.get("/workspace", response_model=WorkspaceAnalytics, responses=CSV_RESPONSE)
async def get_workspace_analytics(caller: CallerDep, session: SessionDep, query: RangeDep):
    """The whole workspace (this ledger): totals and per UTC day."""
    report = await reports.workspace_report(session, caller.tenant, query.range)
    return _answer(report, WorkspaceAnalytics, query, "workspace")


@router.get("/funnel", response_model=Funnel, responses=CSV_RESPONSE)
async def get_funnel(
    caller: CallerDep,
    session: SessionDep,
    query: RangeDep,
    campaign_id: Annotated[str | None, Query(description="one campaign only")] = None,
):
    """sent → opened → replied → interested → meeting (the reference's stages), over the range and per UTC
    day: `opened` counts emails a person opened (unique, human), `meeting` replies labelled
    `meeting_booked`."""
    report = await reports.funnel_report(session, caller.tenant, query.range, campaign_id)
    return _answer(report, Funnel, query, "funnel", reports.FUNNEL)
