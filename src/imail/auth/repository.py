from __future__ import annotations

from sqlalchemy import select

from imail.kit.repository import Repository, TenantRepository
from imail.models import ApiKey, Workspace


class KeyLookup(Repository[ApiKey]):
    """Keys found by their hash, before anyone is authenticated (the one cross-tenant read)."""

    model = ApiKey

    async def by_hash(self, digest: str) -> tuple[ApiKey, Workspace] | None:
        stmt = select(ApiKey, Workspace).join(Workspace, Workspace.id == ApiKey.workspace_id).where(ApiKey.key_hash == digest)
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def by_id(self, key_id: str) -> ApiKey | None:
        return await self.session.get(ApiKey, key_id)


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey
