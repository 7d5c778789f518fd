from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.apikeys import schemas
from imail.auth import scopes as scope_rules
from imail.auth import service as auth
from imail.auth.service import Caller, IssuedKey
from imail.errors import Forbidden
from imail.kit.pagination import PageParams
from imail.models import ApiKey

# The list's schema reads plain columns only, so a page is fetched as rows of exactly those.
LIST_COLUMNS = tuple(name for name in schemas.ApiKey.model_fields if name in ApiKey.__table__.columns)


async def list_keys(session: AsyncSession, caller: Caller, params: PageParams) -> list[dict[str, Any]]:
    return await auth.key_page(session, caller.tenant, params, LIST_COLUMNS)


def _beyond(caller: Caller, scopes: list[str] | None) -> str | None:
    """The first of `scopes` (None: every scope) the caller's own key does not hold, or None."""
    if caller.scopes is None:
        return None
    wanted = scope_rules.ALL_SCOPES if scopes is None else scopes
    return next((s for s in wanted if not scope_rules.allows(caller.scopes, *s.split(":"))), None)


async def create_key(session: AsyncSession, caller: Caller, name: str, scopes: list[str] | None) -> IssuedKey:
    """A new key in the caller's workspace and ledger, never with more rights than the caller's own key."""
    if beyond := _beyond(caller, scopes):
        raise Forbidden(f"A key cannot grant the `{beyond}` scope it does not hold itself", "scopes")
    if caller.scopes is not None and scopes is None:
        scopes = list(caller.scopes)
    return await auth.issue_key(session, caller.workspace_id, caller.livemode, name=name, scopes=scopes)


async def revoke_key(session: AsyncSession, caller: Caller, key_id: str) -> ApiKey:
    """Revoke a key of the caller's workspace and ledger, only if the caller's key holds every scope it has
    (the rule for creating keys): a `keys:write` key must not cut off the unscoped key every integration runs
    on."""
    target = await auth.tenant_key(session, caller.tenant, key_id)
    if target is not None and (beyond := _beyond(caller, target.scopes)):
        held = "every scope" if target.scopes is None else f"the `{beyond}` scope"
        raise Forbidden(
            f"This API key cannot revoke key {key_id}: that key has {held}, which this key lacks; "
            "revoke it with a key that holds every scope it has"
        )
    return await auth.revoke_key(session, key_id, tenant=caller.tenant)
