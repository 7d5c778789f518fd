"""Audit log SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from imail.kit.pagination import PageParams
from imail.kit.repository import Repository, TenantRepository
from imail.models import AuditLog


class AuditLogRepository(TenantRepository[AuditLog]):
    model = AuditLog

    async def list_page(
        self,
        params: PageParams,
        *,
        actor: str | None,
        api_key_id: str | None,
        method: str | None,
        route: str | None,
        object_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[AuditLog]:
        stmt = self.select()
        if actor is not None:
            stmt = stmt.where(AuditLog.actor == actor)
        if api_key_id is not None:
            stmt = stmt.where(AuditLog.api_key_id == api_key_id)
        if method is not None:
            stmt = stmt.where(AuditLog.method == method)
        if route is not None:
            stmt = stmt.where(AuditLog.route == route)
        if object_id is not None:
            stmt = stmt.where(AuditLog.object_id == object_id)
        if since is not None:
            stmt = stmt.where(AuditLog.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(AuditLog.occurred_at < until)
        return await self.page(params, stmt)


class AuditRetention(Repository[AuditLog]):
    """Every workspace's entries (the maintenance worker's pruning)."""

    model = AuditLog

    async def delete_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` of the oldest entries older than `cutoff`; how many went."""
        oldest = (
            select(AuditLog.id)
            .where(AuditLog.occurred_at < cutoff)
            .order_by(AuditLog.occurred_at)
            .limit(limit)
        )
        ids = list((await self.session.execute(oldest)).scalars())
        if not ids:
            return 0
        await self.session.execute(delete(AuditLog).where(AuditLog.id.in_(ids)))
        return len(ids)
