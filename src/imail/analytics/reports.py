"""Reports read from the daily rollups: sums over a date range, per day (zero-filled), per step and variant.

Days are UTC days (the rollups are per UTC day); `timezone` must be `UTC` (anything else is a 400 naming it)
so that nobody reads a UTC bucket as a local one. `from` and `to` are inclusive dates."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.analytics.repository import ReportRepository
from imail.errors import InvalidField, NotFound
from imail.kit.clock import utcnow
from imail.kit.csv_export import safe_cell
from imail.kit.tenancy import Tenant
from imail.models import Campaign, Inbox
from imail.models.analytics import COUNTERS
from imail.models.warmup import WARMUP_COUNTERS
from imail.warmup import service as warmup

MAX_DAYS = 366
DEFAULT_DAYS = 30
# The reference's funnel stages (sent → opened → replied → interested → meeting), each read from the counter
# that means it: an email is opened once a person opened it (unique, human), a meeting is a reply labelled
# meeting_booked.
FUNNEL_COUNTERS = {
    "sent": "sent",
    "opened": "opened_unique",
    "replied": "replied",
    "interested": "interested",
    "meeting": "meeting_booked",
}
FUNNEL = tuple(FUNNEL_COUNTERS)
SUPPORTED_TIMEZONES = ("UTC", "Etc/UTC", "Z")
WARMUP_COLUMNS = tuple(f"warmup_{c}" for c in WARMUP_COUNTERS)
INBOX_COLUMNS = COUNTERS + WARMUP_COLUMNS  # the inbox report's CSV: campaign counts, then warmup


@dataclass(frozen=True, slots=True)
class Range:
    start: date
    end: date

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def date_range(start: date | None, end: date | None, timezone: str) -> Range:
    if timezone not in SUPPORTED_TIMEZONES:
        raise InvalidField(
            f"timezone {timezone!r} is not supported: analytics are bucketed by UTC day; pass timezone=UTC",
            "timezone",
        )
    end = end or utcnow().date()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidField(
            f"from ({start}) is after to ({end}); from and to are inclusive dates (YYYY-MM-DD)", "from"
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidField(
            f"the range spans {(end - start).days + 1} days; at most {MAX_DAYS} at a time", "from"
        )
    return Range(start, end)


def _counts(row: Any) -> dict[str, int]:
    return {c: int(getattr(row, c)) for c in COUNTERS}


async def _report(
    session: AsyncSession,
    tenant: Tenant,
    rng: Range,
    *,
    campaign_id: str | None = None,
    inbox_id: str | None = None,
    by_step: bool = False,
) -> dict[str, Any]:
    """Per day from the table without inboxes (or the fine one for an inbox); totals are the sum of the
    days."""
    filter_column = "inbox_id" if inbox_id is not None else "campaign_id" if campaign_id is not None else None
    repository = ReportRepository(session, tenant)

    async def sums(group: tuple[str, ...]) -> list[Any]:
        return await repository.sums(
            by_inbox=inbox_id is not None,
            group=group,
            filter_column=filter_column,
            target=inbox_id if inbox_id is not None else campaign_id,
            start=rng.start,
            end=rng.end,
        )

    per_day = {row.day: _counts(row) for row in await sums(("day",))}
    zero = {c: 0 for c in COUNTERS}
    days: list[dict[str, Any]] = [{"day": d, **per_day.get(d, zero)} for d in rng.days()]
    totals = {c: sum(day[c] for day in days) for c in COUNTERS}
    report: dict[str, Any] = {
        "from": rng.start,
        "to": rng.end,
        "timezone": "UTC",
        "totals": totals,
        "days": days,
    }
    if by_step:
        rows = await sums(("step", "variant"))
        report["steps"] = [{"step": r.step or None, "variant": r.variant or None, **_counts(r)} for r in rows]
    return report


async def _exists(session: AsyncSession, tenant: Tenant, model: Any, object_id: str, what: str) -> None:
    if not await ReportRepository(session, tenant).owns(model, object_id):
        raise NotFound(
            f"No {what} {object_id!r} in this workspace's {'live' if tenant.livemode else 'test'} ledger"
        )


async def campaign_report(
    session: AsyncSession, tenant: Tenant, campaign_id: str, rng: Range
) -> dict[str, Any]:
    await _exists(session, tenant, Campaign, campaign_id, "campaign")
    return {
        "campaign_id": campaign_id,
        **await _report(session, tenant, rng, campaign_id=campaign_id, by_step=True),
    }


async def inbox_report(session: AsyncSession, tenant: Tenant, inbox_id: str, rng: Range) -> dict[str, Any]:
    """The inbox's campaign counts, each day (and the totals) joined with its warmup counts (`warmup_*`)."""
    await _exists(session, tenant, Inbox, inbox_id, "inbox")
    report = await _report(session, tenant, rng, inbox_id=inbox_id)
    warm = {
        row.day: row for row in await warmup.daily_counts(session, tenant, [inbox_id], rng.start, rng.end)
    }
    for day in report["days"]:
        row = warm.get(day["day"])
        day.update({f"warmup_{c}": getattr(row, c) if row is not None else 0 for c in WARMUP_COUNTERS})
    report["totals"].update({column: sum(day[column] for day in report["days"]) for column in WARMUP_COLUMNS})
    return {"inbox_id": inbox_id, **report}


async def workspace_report(session: AsyncSession, tenant: Tenant, rng: Range) -> dict[str, Any]:
    return await _report(session, tenant, rng)


async def funnel_report(
    session: AsyncSession, tenant: Tenant, rng: Range, campaign_id: str | None
) -> dict[str, Any]:
    if campaign_id is not None:
        await _exists(session, tenant, Campaign, campaign_id, "campaign")
    report = await _report(session, tenant, rng, campaign_id=campaign_id)
    pick = lambda counts: {stage: counts[counter] for stage, counter in FUNNEL_COUNTERS.items()}
    totals = pick(report["totals"])
    return {
        "campaign_id": campaign_id,
        "from": rng.start,
        "to": rng.end,
        "timezone": "UTC",
        "stages": [{"stage": stage, "count": count} for stage, count in totals.items()],
        "totals": totals,
        "days": [{"day": d["day"], **pick(d)} for d in report["days"]],
    }


# --- CSV ----------------------------------------------------------------------------------------------------


def to_csv(report: dict[str, Any], columns: tuple[str, ...] = COUNTERS) -> str:
    """One header row, then one row per day."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["day", *columns])
    for day in report["days"]:
        writer.writerow([safe_cell(day["day"]), *(safe_cell(day[c]) for c in columns)])
    return out.getvalue()
