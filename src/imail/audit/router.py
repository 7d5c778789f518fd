"""`/v1/audit-logs`: the workspace's record of changes (this ledger's), newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from imail.audit import service
from imail.audit.schemas import AuditLogEntry
from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.kit.pagination import Page, PageParams, build_page, page_params
from imail.models.audit import AuditActor

# The log says who holds which key and what each did: workspace administration, so the `workspace` scope.
router = APIRouter(
    prefix="/audit-logs", tags=["Audit log"], dependencies=[Depends(require_scope("workspace"))]
)


@router.get("", response_model=Page[AuditLogEntry])
async def list_audit_logs(
    caller: CallerDep,
    session: SessionDep,
    params: Annotated[PageParams, Depends(page_params)],
    actor: Annotated[AuditActor | None, Query(description="`api_key` or `cli`.")] = None,
    api_key_id: Annotated[str | None, Query(description="Changes made with this key.")] = None,
    method: Annotated[str | None, Query(description="POST, PUT, PATCH, DELETE or CLI.", max_length=8)] = None,
    route: Annotated[
        str | None,
        Query(description="A route template (`/v1/leads/{lead_id}`) or CLI command.", max_length=300),
    ] = None,
    object_id: Annotated[str | None, Query(description="Changes to this object.", max_length=40)] = None,
    since: Annotated[datetime | None, Query(description="At or after this time (RFC 3339).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (RFC 3339).")] = None,
):
    """The audit log: every change made through the API (a successful POST, PUT, PATCH or DELETE) or the
    command line, newest first. Entries are kept for IMAIL_AUDIT_LOG_RETENTION_DAYS (default 365). Needs the
    `workspace:read` scope."""
    rows = await service.list_entries(
        session,
        caller,
        params,
        actor=actor.value if actor else None,
        api_key_id=api_key_id,
        method=method,
        route=route,
        object_id=object_id,
        since=since,
        until=until,
    )
    return build_page(rows, params, AuditLogEntry)
