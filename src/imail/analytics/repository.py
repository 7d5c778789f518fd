"""Analytics' queries: the rollup tables (read by the reports, written by the rollups) and the event log they
are rebuilt from, and the platform-wide figures of the public metrics, the status page and Prometheus.

The rollup writes are a hot path (every batch of events recorded): Core statements on the tables, built once
per dialect, run as executemany."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from imail.kit.repository import TenantRepository, tenant_params, tenant_pin
from imail.kit.sql import among, is_postgres
from imail.kit.tenancy import Tenant
from imail.models import Event, Inbox, MailboxPoll, SequenceState, WebhookDelivery, WorkerHeartbeat
from imail.models.analytics import COUNTERS, AnalyticsCampaignDaily, AnalyticsDaily, AnalyticsRef

KEY_FIELDS = ("workspace_id", "livemode", "campaign_id", "day", "step", "variant", "inbox_id")
COARSE_FIELDS = ("workspace_id", "livemode", "campaign_id", "day", "step", "variant")
REF_FIELDS = ("campaign_id", "step", "variant", "inbox_id", "day", "opened", "clicked", "label")
# workspace_id, livemode, type, data, created_at, id
LoggedEvent = Row[str, bool, str, dict[str, Any], datetime, str]


# --- reports ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _sums_statement(model: Any, group: tuple[str, ...], filter_column: str | None) -> Any:
    """Built once per shape, with bind parameters: the SQL compilation cache does the rest (reads are a few
    ms)."""
    sums = [func.coalesce(func.sum(getattr(model, c)), 0).label(c) for c in COUNTERS]
    columns = [getattr(model, g) for g in group]
    stmt = select(*columns, *sums).where(
        tenant_pin(model), model.day >= bindparam("start"), model.day <= bindparam("end")
    )
    if filter_column is not None:
        stmt = stmt.where(getattr(model, filter_column) == bindparam("target"))
    return stmt.group_by(*columns).order_by(*columns)


@lru_cache(maxsize=8)
def _owned_statement(model: Any) -> Any:
    return select(model.id).where(model.id == bindparam("id"), tenant_pin(model))


class ReportRepository(TenantRepository[AnalyticsCampaignDaily]):
    """A tenant's rollups, summed. Campaign reports read the table without inboxes; an inbox's, the fine
    one."""

    model = AnalyticsCampaignDaily

    async def sums(
        self,
        *,
        by_inbox: bool,
        group: tuple[str, ...],
        filter_column: str | None,
        target: str | None,
        start: date,
        end: date,
    ) -> list[Row[Any]]:
        """The counters summed over `start`..`end` (inclusive), per `group` (in its order), of the rows whose
        `filter_column` is `target` (every row without one)."""
        model: Any = AnalyticsDaily if by_inbox else AnalyticsCampaignDaily
        params: dict[str, Any] = {**tenant_params(self.tenant), "start": start, "end": end}
        if filter_column is not None:
            params["target"] = target
        return list(await self.session.execute(_sums_statement(model, group, filter_column), params))

    async def owns(self, model: Any, object_id: str) -> bool:
        """Whether the tenant has the row `object_id` of `model` (a campaign, an inbox)."""
        found = await self.session.execute(
            _owned_statement(model), {"id": object_id, **tenant_params(self.tenant)}
        )
        return found.first() is not None


# --- rollup writes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Upserts:
    new_refs: Any
    changed_refs: Any
    daily: Any
    campaign_daily: Any


@cache
def _upserts(postgres: bool) -> _Upserts:
    """The rollups' write statements, built once per dialect (building them took ~2 ms, on every batch). One
    statement per table, run for every row (executemany), never a VALUES list as long as the batch: each
    length would compile and be kept in SQLAlchemy's statement cache as a statement of its own (~11 KB per
    row), and a long-running worker sees every length sooner or later."""
    insert = pg_insert if postgres else sqlite_insert
    ref_keys = ["workspace_id", "livemode", "ref_id"]
    # On the tables, not the mapped classes: an ORM-enabled bulk insert costs more per row, for nothing here.
    refs = insert(AnalyticsRef.__table__)

    def adding_counters(model: Any, keys: tuple[str, ...]) -> Any:
        stmt = insert(model.__table__)
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: model.__table__.c[c] + stmt.excluded[c] for c in COUNTERS}
        )

    return _Upserts(
        new_refs=refs.on_conflict_do_nothing(index_elements=ref_keys),
        changed_refs=refs.on_conflict_do_update(
            index_elements=ref_keys, set_={c: refs.excluded[c] for c in REF_FIELDS}
        ),
        daily=adding_counters(AnalyticsDaily, KEY_FIELDS),
        campaign_daily=adding_counters(AnalyticsCampaignDaily, COARSE_FIELDS),
    )


class RollupRepository:
    """The rollup tables of every tenant a batch of events concerns."""

    def __init__(self, session: AsyncSession):
        self.session = session

    async def lock_refs(self, tenant: Tenant, ref_ids: Sequence[str]) -> list[AnalyticsRef]:
        """The tenant's stored refs of these emails and replies, in id order, row-locked on PostgreSQL."""
        stmt = (
            select(AnalyticsRef)
            .where(tenant_pin(AnalyticsRef, tenant), among(AnalyticsRef.ref_id, ref_ids))
            .order_by(AnalyticsRef.ref_id)
        )
        if is_postgres(self.session):
            stmt = stmt.with_for_update()
        result = await self.session.execute(stmt.execution_options(populate_existing=True))
        return list(result.scalars())

    async def write(
        self,
        created_refs: list[dict[str, Any]],
        changed_refs: list[dict[str, Any]],
        daily: list[dict[str, Any]],
        coarse: list[dict[str, Any]],
    ) -> None:
        """New refs inserted (a stored one kept as it is), changed ones overwritten, and the counter rows
        added to the stored sums, in key order: concurrent writers lock rows in the same order and cannot
        deadlock."""
        upserts = _upserts(is_postgres(self.session))
        for rows, stmt in ((created_refs, upserts.new_refs), (changed_refs, upserts.changed_refs)):
            if rows:
                await self.session.execute(stmt, rows)
        for rows, stmt, keys in (
            (daily, upserts.daily, KEY_FIELDS),
            (coarse, upserts.campaign_daily, COARSE_FIELDS),
        ):
            if rows:
                await self.session.execute(stmt, sorted(rows, key=lambda r: tuple(r[k] for k in keys)))

    async def insert(
        self,
        daily: list[dict[str, Any]],
        coarse: list[dict[str, Any]],
        refs: list[dict[str, Any]],
        chunk: int = 1000,
    ) -> None:
        """Rows into tables known to hold none of them (a rebuild, after `wipe`), `chunk` at a time."""
        for table, rows in (
            (AnalyticsDaily.__table__, daily),
            (AnalyticsCampaignDaily.__table__, coarse),
            (AnalyticsRef.__table__, refs),
        ):
            for start in range(0, len(rows), chunk):
                await self.session.execute(table.insert(), rows[start : start + chunk])

    async def wipe(self, workspace_id: str | None) -> None:
        """Every rollup row of the workspace (of every workspace without one), both ledgers."""
        for model in (AnalyticsDaily, AnalyticsCampaignDaily, AnalyticsRef):
            wipe = delete(model)
            if workspace_id is not None:
                wipe = wipe.where(model.workspace_id == workspace_id)
            await self.session.execute(wipe)

    async def events(self, workspace_id: str | None, batch: int) -> AsyncIterator[LoggedEvent]:
        """The event log (of the workspace, or all) in the order it was written: (workspace_id, livemode,
        type, data, created_at, id), streamed `batch` rows at a time."""
        stmt = select(Event.workspace_id, Event.livemode, Event.type, Event.data, Event.created_at, Event.id)
        if workspace_id is not None:
            stmt = stmt.where(Event.workspace_id == workspace_id)
        stmt = stmt.order_by(Event.created_at, Event.id)
        result = await self.session.stream(stmt.execution_options(yield_per=batch))
        async for row in result:
            yield row


# --- platform-wide figures ----------------------------------------------------------------------------------


class PlatformRepository:
    """Figures across every workspace (live ledger where it says so), for the public metrics, the status page
    and Prometheus: one small query each."""

    def __init__(self, session: AsyncSession):
        self.session = session

    async def live_sent_and_replied(self, first: date, last: date) -> tuple[int, int]:
        """Live emails sent and replies received over the UTC days `first`..`last` (inclusive), from the
        rollups."""
        rollup = AnalyticsCampaignDaily
        sent, replied = (
            await self.session.execute(
                select(
                    func.coalesce(func.sum(rollup.sent), 0), func.coalesce(func.sum(rollup.replied), 0)
                ).where(rollup.day >= first, rollup.day <= last, rollup.livemode.is_(True))
            )
        ).one()
        return int(sent), int(replied)

    async def live_sent_and_bounced(self) -> tuple[int, int, int]:
        """Live emails sent, hard and soft bounces, all time, from the rollups."""
        rollup = AnalyticsCampaignDaily
        sent, hard, soft = (
            await self.session.execute(
                select(
                    func.coalesce(func.sum(rollup.sent), 0),
                    func.coalesce(func.sum(rollup.bounced_hard), 0),
                    func.coalesce(func.sum(rollup.bounced_soft), 0),
                ).where(rollup.livemode.is_(True))
            )
        ).one()
        return int(sent), int(hard), int(soft)

    async def live_connected_inboxes(self) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(Inbox)
            .where(Inbox.livemode.is_(True), Inbox.status == "connected")
        )
        return int(count or 0)

    async def live_sends_per_hour(self, first: datetime) -> dict[str, int]:
        """Live `email.sent` events per UTC hour ("YYYY-MM-DD HH") since `first` (an index range on
        events.created_at)."""
        if is_postgres(self.session):
            hour = func.to_char(func.timezone("UTC", Event.created_at), "YYYY-MM-DD HH24")
        else:
            hour = func.strftime("%Y-%m-%d %H", Event.created_at)
        rows = await self.session.execute(
            select(hour, func.count())
            .where(Event.created_at >= first, Event.type == "email.sent", Event.livemode.is_(True))
            .group_by(hour)
        )
        return {str(h): int(n) for h, n in rows.all()}

    async def workers_seen_since(self, since: datetime) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(WorkerHeartbeat).where(WorkerHeartbeat.seen_at >= since)
        )
        return int(count or 0)

    async def oldest_due(self, now: datetime) -> datetime | None:
        """The due time of the longest-waiting due send."""
        due: datetime | None = await self.session.scalar(
            select(func.min(SequenceState.due_at)).where(SequenceState.due_at <= now)
        )
        return due

    async def due_sends(self, now: datetime) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(SequenceState).where(SequenceState.due_at <= now)
        )
        return int(count or 0)

    async def webhook_backlog(self, now: datetime) -> int:
        """Webhook deliveries due and not yet made."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        )
        return int(count or 0)

    async def mailboxes_leased(self, now: datetime) -> int:
        """Mailboxes an IMAP reader holds a lease on."""
        count = await self.session.scalar(
            select(func.count()).select_from(MailboxPoll).where(MailboxPoll.lease_until > now)
        )
        return int(count or 0)
