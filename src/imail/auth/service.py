"""Authenticating a bearer token and issuing or revoking keys."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth import keys
from imail.auth.cache import announce_revocation
from imail.auth.repository import ApiKeyRepository, KeyLookup
from imail.auth.tiers import policy, rate_limit_for
from imail.db import after_commit
from imail.errors import NotFound, TierGated, Unauthorized
from imail.kit.clock import utcnow
from imail.kit.pagination import PageParams
from imail.kit.ratelimit import Limit
from imail.kit.tenancy import Tenant
from imail.models import ApiKey


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a key of one workspace, in one ledger."""

    key_id: str
    workspace_id: str
    livemode: bool
    tier: str
    scopes: list[str] | None
    rate_limit: Limit
    key_name: str | None = None  # what the audit log records beside the id

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.workspace_id, self.livemode)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str


async def _lookup(session: AsyncSession, token: str) -> Row | None:
    """The unrevoked key's row (KeyLookup.by_hash: key and workspace fields), or None."""
    if keys.parse(token) is None:
        return None
    digest = keys.hash_key(token)
    row = await KeyLookup(session).by_hash(digest)
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        return None
    return row


def bearer_token(authorization: str | None) -> str:
    """The API key of an `Authorization: Bearer …` header (401 when missing or malformed)."""
    if not authorization:
        raise Unauthorized("Missing API key: send `Authorization: Bearer imk_live_…` or `imk_test_…`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Malformed Authorization header: expected `Bearer <api key>`")
    return token.strip()


async def caller_for_token(session: AsyncSession, token: str) -> Caller:
    found = await _lookup(session, token)
    if found is None:
        raise Unauthorized("Invalid API key: it is unknown or has been revoked")
    if not policy(found.tier).api_access:
        raise TierGated("The API is available on Surge and above; this workspace is on Starter")
    return Caller(
        key_id=found.id,
        workspace_id=found.workspace_id,
        livemode=found.livemode,
        tier=found.tier,
        scopes=found.scopes,
        rate_limit=rate_limit_for(found.tier, found.rate_limit_per_minute, found.rate_limit_burst),
        key_name=found.name,
    )


async def authenticate(session: AsyncSession, authorization: str | None) -> Caller:
    return await caller_for_token(session, bearer_token(authorization))


async def issue_key(
    session: AsyncSession, workspace_id: str, livemode: bool, name: str = "", scopes: list[str] | None = None
) -> IssuedKey:
    if not await KeyLookup(session).workspace_exists(workspace_id):
        raise NotFound(f"No workspace {workspace_id}")
    secret = keys.generate(livemode)
    key = ApiKey(
        workspace_id=workspace_id,
        livemode=livemode,
        name=name,
        key_hash=keys.hash_key(secret),
        redacted=keys.redact(secret),
        scopes=scopes,
    )
    await KeyLookup(session).add(key)
    return IssuedKey(key, secret)


async def revoke_key(session: AsyncSession, key_id: str, tenant: Tenant | None = None) -> ApiKey:
    """Revoke a key; with a tenant, only a key of that tenant (404 otherwise). Revoking twice is a no-op."""
    key = await KeyLookup(session).by_id(key_id)
    if key is None or (
        tenant is not None and (key.workspace_id, key.livemode) != (tenant.workspace_id, tenant.livemode)
    ):
        raise NotFound(f"No API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        # Only once committed: a cache refilled from the database before the commit would keep the key alive.
        after_commit(session, partial(announce_revocation, digest=key.key_hash))
    return key


async def key_page(
    session: AsyncSession, tenant: Tenant, params: PageParams, columns: Sequence[str]
) -> list[dict[str, Any]]:
    """A page of the tenant's keys, as the named columns (GET /v1/api-keys: imail.apikeys)."""
    return await ApiKeyRepository(session, tenant).page_columns(params, columns)


async def tenant_key(session: AsyncSession, tenant: Tenant, key_id: str) -> ApiKey | None:
    """One of the tenant's keys, or None."""
    return await ApiKeyRepository(session, tenant).get(key_id)
