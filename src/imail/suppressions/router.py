"""`/v1/suppressions`: addresses and domains this workspace never emails (per ledger: live and test apart)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse

from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.idempotency.deps import Idempotent
from imail.kit import csv_export
from imail.kit.pagination import Page, PageParams, build_page, page_params
from imail.models.suppression import SuppressionReason, SuppressionType
from imail.suppressions import service
from imail.suppressions.schemas import Suppression, SuppressionCreate

router = APIRouter(
    prefix="/suppressions",
    tags=["Suppressions"],
    dependencies=[Depends(require_scope("suppressions")), Idempotent],
)


@router.get("", response_model=Page[Suppression])
async def list_suppressions(
    caller: CallerDep,
    session: SessionDep,
    params: Annotated[PageParams, Depends(page_params)],
    type: Annotated[SuppressionType | None, Query(description="`email` or `domain`.")] = None,
    value: Annotated[str | None, Query(description="An exact address or domain.")] = None,
    reason: Annotated[SuppressionReason | None, Query()] = None,
):
    """List suppression entries, newest first."""
    rows = await service.list_suppressions(
        session, caller, params, type.value if type else None, value, reason.value if reason else None
    )
    return build_page(rows, params, Suppression)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV, streamed."}
    },
)
async def export_suppressions(
    request: Request,
    caller: CallerDep,
    type: Annotated[SuppressionType | None, Query(description="`email` or `domain`.")] = None,
    value: Annotated[str | None, Query(description="An exact address or domain.")] = None,
    reason: Annotated[SuppressionReason | None, Query()] = None,
):
    """Every matching entry as CSV (the list's filters), oldest first, streamed; cells a spreadsheet would run
    as formulas are prefixed with `'`."""
    chunks = service.export_suppressions(
        request.app.state.database,
        caller.tenant,
        type.value if type else None,
        value,
        reason.value if reason else None,
    )
    return StreamingResponse(
        chunks, media_type=csv_export.MEDIA_TYPE, headers=csv_export.attachment("suppressions.csv")
    )


@router.post("", response_model=Suppression, status_code=201)
async def create_suppression(body: SuppressionCreate, caller: CallerDep, session: SessionDep):
    """Suppress an address or a whole domain; its leads in every campaign stop being emailed."""
    return await service.create_suppression(session, caller, body)


@router.get("/{suppression_id}", response_model=Suppression)
async def get_suppression(suppression_id: str, caller: CallerDep, session: SessionDep):
    """Retrieve one entry."""
    return await service.get_suppression(session, caller, suppression_id)


@router.delete("/{suppression_id}", response_model=Suppression)
async def delete_suppression(suppression_id: str, caller: CallerDep, session: SessionDep):
    """Remove an entry; leads it held back, and that no other entry covers, become active again."""
    return await service.delete_suppression(session, caller, suppression_id)
