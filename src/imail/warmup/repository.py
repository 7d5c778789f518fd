"""All SQL of warmup. `WarmupRepository` is tenant-scoped (the API's views and settings); `WarmupQueue` is the
workers' cross-tenant view of the pool (the pool spans workspaces), which only acts on rows it has locked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from imail.kit.repository import Repository, TenantRepository
from imail.kit.sql import among, is_postgres, rowcount, upsert_insert
from imail.models import Inbox
from imail.models.analytics import AnalyticsDaily
from imail.models.inbox import InboxStatus, WarmupStatus
from imail.models.warmup import WARMUP_COUNTERS, InboxWarmup, WarmupDaily, WarmupMessage, WarmupMessageStatus


class WarmupRepository(TenantRepository[InboxWarmup]):
    model = InboxWarmup

    async def settings_for(self, inbox_ids: Iterable[str]) -> dict[str, InboxWarmup]:
        ids = list(set(inbox_ids))
        if not ids:
            return {}
        rows = await self.session.execute(self.select().where(among(InboxWarmup.inbox_id, ids)))
        return {row.inbox_id: row for row in rows.scalars()}

    async def daily_between(self, inbox_ids: Iterable[str], first: date, last: date) -> list[WarmupDaily]:
        ids = list(set(inbox_ids))
        if not ids:
            return []
        stmt = (
            select(WarmupDaily)
            .where(
                self.pin(WarmupDaily),
                among(WarmupDaily.inbox_id, ids),
                WarmupDaily.day >= first,
                WarmupDaily.day <= last,
            )
            .order_by(WarmupDaily.inbox_id, WarmupDaily.day)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def campaign_counts(
        self, inbox_ids: Iterable[str], first: date, last: date
    ) -> dict[str, tuple[int, int, int]]:
        """(sent, bounced, replied) per inbox from the analytics rollups, days `first`..`last`."""
        ids = list(set(inbox_ids))
        if not ids:
            return {}
        stmt = (
            select(
                AnalyticsDaily.inbox_id,
                func.coalesce(func.sum(AnalyticsDaily.sent), 0),
                func.coalesce(func.sum(AnalyticsDaily.bounced_hard + AnalyticsDaily.bounced_soft), 0),
                func.coalesce(func.sum(AnalyticsDaily.replied), 0),
            )
            .where(
                self.pin(AnalyticsDaily),
                among(AnalyticsDaily.inbox_id, ids),
                AnalyticsDaily.day >= first,
                AnalyticsDaily.day <= last,
            )
            .group_by(AnalyticsDaily.inbox_id)
        )
        return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in await self.session.execute(stmt)}

    async def upsert(self, inbox_id: str, now: datetime, **values: Any) -> InboxWarmup:
        row = (await self.settings_for([inbox_id])).get(inbox_id)
        if row is None:
            row = self.new(inbox_id=inbox_id, updated_at=now, **values)
            self.session.add(row)
        else:
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now
        await self.session.flush()
        return row


class WarmupQueue(Repository[InboxWarmup]):
    """The warmup worker's and the reader's queries across workspaces."""

    model = InboxWarmup

    async def lock_due(self, now: datetime, limit: int) -> list[InboxWarmup]:
        """Warming inboxes with a send due (a ramp slot or a queued reply), locked; other workers skip
        them."""
        replies_due = select(WarmupMessage.inbox_id).where(
            WarmupMessage.status == WarmupMessageStatus.queued.value, WarmupMessage.due_at <= now
        )
        stmt = (
            select(InboxWarmup)
            .where(
                InboxWarmup.active.is_(True),
                InboxWarmup.livemode.is_(True),
                or_(
                    InboxWarmup.next_send_at.is_(None),
                    InboxWarmup.next_send_at <= now,
                    InboxWarmup.inbox_id.in_(replies_due),
                ),
            )
            .order_by(InboxWarmup.next_send_at.is_not(None), InboxWarmup.next_send_at, InboxWarmup.inbox_id)
            .limit(limit)
        )
        if is_postgres(self.session):
            stmt = stmt.with_for_update(skip_locked=True)
        return list((await self.session.execute(stmt.execution_options(populate_existing=True))).scalars())

    async def lock_settings(self, inbox_ids: Iterable[str]) -> dict[str, InboxWarmup]:
        """These inboxes' warmup rows, locked in id order (the one lock order of every warmup writer)."""
        ids = sorted(set(inbox_ids))
        if not ids:
            return {}
        stmt = select(InboxWarmup).where(among(InboxWarmup.inbox_id, ids)).order_by(InboxWarmup.inbox_id)
        if is_postgres(self.session):
            stmt = stmt.with_for_update()
        rows = await self.session.execute(stmt.execution_options(populate_existing=True))
        return {row.inbox_id: row for row in rows.scalars()}

    async def inboxes(self, ids: Iterable[str]) -> dict[str, Inbox]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = await self.session.execute(select(Inbox).where(among(Inbox.id, wanted)))
        return {row.id: row for row in rows.scalars()}

    async def pool(self) -> list[Any]:
        """Every inbox in the pool — live, connected, warmup active, any workspace — as (id, email, name)
        rows."""
        stmt = (
            select(Inbox.id, Inbox.email, Inbox.name)
            .join(InboxWarmup, InboxWarmup.inbox_id == Inbox.id)
            .where(
                InboxWarmup.active.is_(True),
                Inbox.livemode.is_(True),
                Inbox.status == InboxStatus.connected.value,
                Inbox.warmup_status == WarmupStatus.active.value,
            )
            .order_by(Inbox.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def lock_daily(
        self, keys: Iterable[tuple[str, str, bool, date]]
    ) -> dict[tuple[str, date], WarmupDaily]:
        """Daily rows for (inbox, workspace, livemode, day) keys, created if missing and locked."""
        wanted = sorted(set(keys), key=lambda k: (k[0], k[3]))
        if not wanted:
            return {}
        zeros = {name: 0 for name in WARMUP_COUNTERS}
        await self.session.execute(
            upsert_insert(self.session)(WarmupDaily).on_conflict_do_nothing(
                index_elements=["inbox_id", "day"]
            ),
            [
                {"inbox_id": i, "workspace_id": ws, "livemode": live, "day": d, **zeros}
                for i, ws, live, d in wanted
            ],
        )
        found: dict[tuple[str, date], WarmupDaily] = {}
        for day in sorted({k[3] for k in wanted}):
            ids = [k[0] for k in wanted if k[3] == day]
            stmt = (
                select(WarmupDaily)
                .where(among(WarmupDaily.inbox_id, ids), WarmupDaily.day == day)
                .order_by(WarmupDaily.inbox_id)
            )
            if is_postgres(self.session):
                stmt = stmt.with_for_update()
            for row in (await self.session.execute(stmt.execution_options(populate_existing=True))).scalars():
                found[(row.inbox_id, row.day)] = row
        return found

    async def daily_for(self, inbox_ids: Iterable[str], day: date) -> dict[str, WarmupDaily]:
        """Today's rows, unlocked (the sending planner reads them under its own counter locks)."""
        ids = list(set(inbox_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(WarmupDaily).where(among(WarmupDaily.inbox_id, ids), WarmupDaily.day == day)
        )
        return {row.inbox_id: row for row in rows.scalars()}

    async def settings_for(self, inbox_ids: Iterable[str]) -> dict[str, InboxWarmup]:
        ids = list(set(inbox_ids))
        if not ids:
            return {}
        rows = await self.session.execute(select(InboxWarmup).where(among(InboxWarmup.inbox_id, ids)))
        return {row.inbox_id: row for row in rows.scalars()}

    async def due_replies(self, inbox_ids: Iterable[str], now: datetime) -> dict[str, list[WarmupMessage]]:
        """Queued replies due from these (locked) inboxes, oldest first."""
        ids = list(set(inbox_ids))
        found: dict[str, list[WarmupMessage]] = defaultdict(list)
        if ids:
            stmt = (
                select(WarmupMessage)
                .where(
                    WarmupMessage.status == WarmupMessageStatus.queued.value,
                    WarmupMessage.due_at <= now,
                    among(WarmupMessage.inbox_id, ids),
                )
                .order_by(WarmupMessage.due_at, WarmupMessage.id)
            )
            for row in (await self.session.execute(stmt)).scalars():
                found[row.inbox_id].append(row)
        return found

    async def messages(self, ids: Iterable[str]) -> dict[str, WarmupMessage]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        stmt = select(WarmupMessage).where(among(WarmupMessage.id, wanted)).order_by(WarmupMessage.id)
        if is_postgres(self.session):
            stmt = stmt.with_for_update()
        rows = await self.session.execute(stmt.execution_options(populate_existing=True))
        return {row.id: row for row in rows.scalars()}

    async def by_headers(self, headers: Iterable[str]) -> dict[str, WarmupMessage]:
        wanted = sorted(set(headers))
        if not wanted:
            return {}
        stmt = (
            select(WarmupMessage)
            .where(among(WarmupMessage.message_id_header, wanted))
            .order_by(WarmupMessage.id)
        )
        if is_postgres(self.session):
            stmt = stmt.with_for_update()
        rows = await self.session.execute(stmt.execution_options(populate_existing=True))
        return {row.message_id_header: row for row in rows.scalars()}

    async def known_headers(self, headers: Iterable[str]) -> set[str]:
        wanted = list(set(headers))
        if not wanted:
            return set()
        stmt = select(WarmupMessage.message_id_header).where(among(WarmupMessage.message_id_header, wanted))
        return set((await self.session.execute(stmt)).scalars())

    async def recent_outcomes(self, inbox_id: str, limit: int) -> list[tuple[str, str | None]]:
        """(status, placement) of the inbox's last `limit` warmup emails whose outcome is known: bounced, or
        placed."""
        stmt = (
            select(WarmupMessage.status, WarmupMessage.placement)
            .where(
                WarmupMessage.inbox_id == inbox_id,
                or_(
                    WarmupMessage.status == WarmupMessageStatus.bounced.value,
                    WarmupMessage.placement.is_not(None),
                ),
            )
            .order_by(WarmupMessage.created_at.desc(), WarmupMessage.id.desc())
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self.session.execute(stmt)]

    async def pause_if_active(self, inbox_id: str) -> bool:
        """Pause an inbox's warmup unless it already is: True for exactly one caller (one event per pause)."""
        result = await self.session.execute(
            update(Inbox)
            .where(Inbox.id == inbox_id, Inbox.warmup_status == WarmupStatus.active.value)
            .values(warmup_status=WarmupStatus.paused.value)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result) == 1
