from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row

from imail.kit.repository import Repository, TenantRepository
from imail.models import ApiKey, Workspace

# Every authenticated request runs this, so it is built once: a statement reused as-is skips SQLAlchemy's
# per-call construction and cache-key work, and plain columns skip loading two identity-mapped objects when
# the caller needs nine values (a measurable share of a small request's CPU: bench/api.py).
KEY_BY_HASH = (
    select(
        ApiKey.id,
        ApiKey.name,
        ApiKey.key_hash,
        ApiKey.revoked_at,
        ApiKey.livemode,
        ApiKey.scopes,
        ApiKey.workspace_id,
        Workspace.tier,
        Workspace.rate_limit_per_minute,
        Workspace.rate_limit_burst,
    )
    .join(Workspace, Workspace.id == ApiKey.workspace_id)
    .where(ApiKey.key_hash == bindparam("digest"))
)


class KeyLookup(Repository[ApiKey]):
    """Keys found by their hash, before anyone is authenticated (the one cross-tenant read)."""

    model = ApiKey

    async def by_hash(self, digest: str) -> Row | None:
        """The key's and its workspace's fields named in KEY_BY_HASH (`row.id`, `row.tier`, …), or None."""
        return (await self.session.execute(KEY_BY_HASH, {"digest": digest})).first()

    async def by_id(self, key_id: str) -> ApiKey | None:
        return await self.session.get(ApiKey, key_id)

    async def workspace_exists(self, workspace_id: str) -> bool:
        return await self.session.get(Workspace, workspace_id) is not None


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey
