from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from imail.kit.repository import Repository, TenantRepository
from imail.kit.sql import rowcount
from imail.models import IdempotencyRecord


class IdempotencyRepository(TenantRepository[IdempotencyRecord]):
    model = IdempotencyRecord

    async def by_key(self, api_key_id: str, key: str) -> IdempotencyRecord | None:
        stmt = self.select().where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
        return (await self.session.execute(stmt)).scalar_one_or_none()


class IdempotencyMaintenance(Repository[IdempotencyRecord]):
    model = IdempotencyRecord

    async def delete_created_before(self, cutoff: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)
        )
        return rowcount(result) or 0

    async def delete_id(self, record_id: str) -> None:
        await self.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
