"""Tracking domains live on two tables (workspaces, and inboxes overriding them): the queries that span
both."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from imail.models import Inbox, Workspace
from imail.models.tracking import TrackingDomainStatus


class TrackingDomainRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def owners(self, domain: str) -> set[str]:
        """The workspaces whose workspace or one of whose inboxes names `domain`, whatever its status."""
        found = set(
            (
                await self.session.execute(select(Workspace.id).where(Workspace.tracking_domain == domain))
            ).scalars()
        )
        found |= set(
            (
                await self.session.execute(
                    select(Inbox.workspace_id).where(Inbox.tracking_domain == domain).distinct()
                )
            ).scalars()
        )
        return found

    async def is_verified(self, domain: str) -> bool:
        verified = TrackingDomainStatus.verified.value
        for model in (Workspace, Inbox):
            stmt = (
                select(model.id)
                .where(model.tracking_domain == domain, model.tracking_domain_status == verified)
                .limit(1)
            )
            if (await self.session.execute(stmt)).first() is not None:
                return True
        return False

    async def verified_for_workspaces(self, workspace_ids: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(workspace_ids))
        if not wanted:
            return {}
        stmt = select(Workspace.id, Workspace.tracking_domain).where(
            Workspace.id.in_(wanted), Workspace.tracking_domain_status == TrackingDomainStatus.verified.value
        )
        return {row.id: row.tracking_domain for row in await self.session.execute(stmt)}

    async def due(self, model: Any, before: datetime, limit: int) -> list[Any]:
        """Rows of `model` (Workspace or Inbox) with a domain last checked before `before` (or never)."""
        stmt = (
            select(model)
            .where(
                model.tracking_domain.is_not(None),
                or_(model.tracking_domain_checked_at.is_(None), model.tracking_domain_checked_at < before),
            )
            .order_by(
                model.tracking_domain_checked_at.is_not(None), model.tracking_domain_checked_at, model.id
            )
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def row(self, model: Any, row_id: str) -> Any:
        return await self.session.get(model, row_id)
