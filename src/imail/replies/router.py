"""`/v1/replies`: the unified inbox, label corrections; `/v1/leads/{id}/reply`: answer a lead in its
thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse

from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.idempotency.deps import Idempotent
from imail.inboxes.outbound import OutboundContextDep
from imail.kit import csv_export
from imail.kit.pagination import Page, PageParams, build_page, page_params
from imail.models.reply import ReplyLabel
from imail.replies import service
from imail.replies.schemas import LeadReplyCreate, Reply, ReplyDetail, ReplyDirection, ReplyUpdate

router = APIRouter(tags=["Replies"], dependencies=[Depends(require_scope("replies")), Idempotent])


@router.get("/replies", response_model=Page[Reply])
async def list_replies(
    caller: CallerDep,
    session: SessionDep,
    params: Annotated[PageParams, Depends(page_params)],
    campaign_id: Annotated[str | None, Query(description="Only this campaign's replies.")] = None,
    inbox_id: Annotated[
        str | None, Query(description="Only replies read from (or sent by) this inbox.")
    ] = None,
    lead_id: Annotated[str | None, Query(description="Only this lead's replies.")] = None,
    label: Annotated[ReplyLabel | None, Query()] = None,
    auto_reply: Annotated[
        bool | None, Query(description="`false` hides out-of-office and other auto-replies.")
    ] = None,
    direction: Annotated[
        ReplyDirection | None,
        Query(description="`inbound` (from leads), `outbound` (our answers); default: both."),
    ] = None,
):
    """The unified inbox: replies from every inbox, newest first."""
    rows = await service.list_replies(
        session,
        caller,
        params,
        campaign_id=campaign_id,
        inbox_id=inbox_id,
        lead_id=lead_id,
        label=label.value if label else None,
        auto_reply=auto_reply,
        direction=direction,
    )
    return build_page(rows, params, Reply)


@router.get(
    "/replies/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV, streamed."}
    },
)
async def export_replies(
    request: Request,
    caller: CallerDep,
    campaign_id: Annotated[str | None, Query(description="Only this campaign's replies.")] = None,
    inbox_id: Annotated[
        str | None, Query(description="Only replies read from (or sent by) this inbox.")
    ] = None,
    lead_id: Annotated[str | None, Query(description="Only this lead's replies.")] = None,
    label: Annotated[ReplyLabel | None, Query()] = None,
    auto_reply: Annotated[bool | None, Query(description="`false` hides auto-replies.")] = None,
    direction: Annotated[
        ReplyDirection | None, Query(description="`inbound` or `outbound`; default: both.")
    ] = None,
):
    """Every matching reply as CSV (the list's filters), oldest first, streamed: its new text (`reply_text`),
    not the quoted history. Cells a spreadsheet would run as formulas are prefixed with `'`."""
    chunks = service.export_replies(
        request.app.state.database,
        caller.tenant,
        campaign_id=campaign_id,
        inbox_id=inbox_id,
        lead_id=lead_id,
        label=label.value if label else None,
        auto_reply=auto_reply,
        direction=direction,
    )
    return StreamingResponse(
        chunks, media_type=csv_export.MEDIA_TYPE, headers=csv_export.attachment("replies.csv")
    )


@router.get("/replies/{reply_id}", response_model=ReplyDetail)
async def get_reply(reply_id: str, caller: CallerDep, session: SessionDep):
    """A reply with its headers, whole text and the thread it belongs to."""
    return await service.reply_detail(session, caller, reply_id)


@router.patch("/replies/{reply_id}", response_model=Reply)
async def update_reply(reply_id: str, body: ReplyUpdate, caller: CallerDep, session: SessionDep):
    """Correct a reply's label. The lead's interest_status follows (an `unsubscribe_request` suppresses the
    address), and `reply.classified` fires with the new label and confidence 1."""
    return await service.update_reply(session, caller, reply_id, body)


@router.post("/leads/{lead_id}/reply", response_model=Reply, status_code=201)
async def reply_to_lead(
    lead_id: str, body: LeadReplyCreate, caller: CallerDep, session: SessionDep, ctx: OutboundContextDep
):
    """Answer a lead in its thread, from the inbox that wrote to it (In-Reply-To and References set). Sent
    over SMTP before this answers (429 while the workspace already has its most mail operations in flight); in
    test mode recorded without sending."""
    return await service.answer_lead(session, caller, ctx, lead_id, body)
