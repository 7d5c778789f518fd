"""Audit log rules: recording a change (from the API's recording dependency or the CLI), listing, pruning.

Only what identifies a change is kept: who (the API key's id and name, or `cli`), what (the method and route
template, or the CLI command; the object's id), when, from which address, the request id. Never a request
body, a query string or a header: secrets (inbox passwords, webhook signing secrets, API keys) travel in
those."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.audit.repository import AuditLogRepository, AuditRetention
from imail.auth.service import Caller
from imail.db import Database
from imail.errors import InvalidField
from imail.kit import clock
from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant
from imail.models import AuditLog
from imail.models.audit import AuditActor

PRUNE_BATCH = 5000


async def record_api_change(
    session: AsyncSession,
    caller: Caller,
    *,
    method: str,
    route: str,
    object_id: str | None,
    path_ids: dict[str, str],
    status_code: int,
    ip_address: str | None,
    request_id: str | None,
) -> None:
    """One entry for a change a key made, in the request's transaction (it commits with the change or not at
    all)."""
    entry = AuditLogRepository(session, caller.tenant).new(
        occurred_at=clock.utcnow(),
        actor=AuditActor.api_key.value,
        api_key_id=caller.key_id,
        api_key_name=caller.key_name,
        method=method,
        route=route[:300],
        object_id=object_id,
        path_ids=path_ids,
        status_code=status_code,
        ip_address=ip_address,
        request_id=request_id,
    )
    session.add(entry)
    await session.flush()


async def record_cli_change(
    session: AsyncSession,
    tenant: Tenant,
    command: str,
    object_id: str | None,
    ids: dict[str, str] | None = None,
) -> None:
    """One entry for a change made with the `imail` command line, in the command's transaction."""
    session.add(
        AuditLogRepository(session, tenant).new(
            occurred_at=clock.utcnow(),
            actor=AuditActor.cli.value,
            api_key_id=None,
            api_key_name=None,
            method="CLI",
            route=command[:300],
            object_id=object_id,
            path_ids=ids or {},
            status_code=None,
            ip_address=None,
            request_id=None,
        )
    )
    await session.flush()


async def list_entries(
    session: AsyncSession,
    caller: Caller,
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
    if since is not None and until is not None and since >= until:
        raise InvalidField("since must be before until", "since")
    return await AuditLogRepository(session, caller.tenant).list_page(
        params,
        actor=actor,
        api_key_id=api_key_id,
        method=method.upper() if method else None,
        route=route,
        object_id=object_id,
        since=since,
        until=until,
    )


async def prune(database: Database, retention_days: int, now: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete entries older than the retention, in bounded transactions; how many went."""
    cutoff = now - timedelta(days=retention_days)
    total = 0
    while True:
        async with database.transaction() as session:
            deleted = await AuditRetention(session).delete_before(cutoff, batch)
        total += deleted
        if deleted < batch:
            return total


def response_id(result: Any) -> str | None:
    """The id of what an endpoint answered with (an ORM object, a dict, a schema), if it has one."""
    value = result.get("id") if isinstance(result, dict) else getattr(result, "id", None)
    return value if isinstance(value, str) and 0 < len(value) <= 40 else None
