"""Deprecation usage and notices. Rows are keyed by workspace (both ledgers: a warning is about the
workspace's integrations, whichever ledger they call)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imail.kit.sql import upsert_insert
from imail.models import ApiKey, Workspace
from imail.models.deprecation import DeprecationNotice, DeprecationUsage


class DeprecationRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def record_use(
        self, workspace_id: str, api_key_id: str, targets: Sequence[str], now: datetime
    ) -> None:
        table = DeprecationUsage.__table__
        for target in targets:
            stmt = upsert_insert(self.session)(table).values(
                workspace_id=workspace_id,
                api_key_id=api_key_id,
                target=target,
                count=1,
                first_used_at=now,
                last_used_at=now,
            )
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["workspace_id", "api_key_id", "target"],
                    set_={"count": table.c.count + 1, "last_used_at": stmt.excluded.last_used_at},
                )
            )

    async def workspaces_using(self, target: str) -> list[str]:
        stmt = select(DeprecationUsage.workspace_id).where(DeprecationUsage.target == target).distinct()
        return sorted((await self.session.execute(stmt)).scalars())

    async def usage(self, workspace_id: str, target: str) -> list[tuple[DeprecationUsage, str, bool]]:
        """Each key's use of `target`, with the key's name and ledger, most used first."""
        stmt = (
            select(DeprecationUsage, ApiKey.name, ApiKey.livemode)
            .join(ApiKey, ApiKey.id == DeprecationUsage.api_key_id)
            .where(DeprecationUsage.workspace_id == workspace_id, DeprecationUsage.target == target)
            .order_by(DeprecationUsage.count.desc(), DeprecationUsage.api_key_id)
        )
        return [(usage, name, livemode) for usage, name, livemode in (await self.session.execute(stmt)).all()]

    async def last_notice(self, workspace_id: str, target: str) -> DeprecationNotice | None:
        return await self.session.get(DeprecationNotice, (workspace_id, target))

    async def save_notice(
        self, workspace_id: str, target: str, now: datetime, emailed_to: str | None
    ) -> None:
        table = DeprecationNotice.__table__
        stmt = upsert_insert(self.session)(table).values(
            workspace_id=workspace_id, target=target, sent_at=now, emailed_to=emailed_to
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "target"],
                set_={"sent_at": stmt.excluded.sent_at, "emailed_to": stmt.excluded.emailed_to},
            )
        )

    async def workspace(self, workspace_id: str) -> Workspace | None:
        return await self.session.get(Workspace, workspace_id)
