"""`/v1/leads`: a campaign's recipients. One at a time, up to 5000 per bulk call, or a CSV file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import Response, StreamingResponse

from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.errors import MissingField
from imail.idempotency.deps import Idempotent
from imail.jobs import service as jobs
from imail.jobs.schemas import Job
from imail.kit import csv_export
from imail.kit.pagination import Page, PageParams, build_page, page_params
from imail.kit.responses import JSONBody
from imail.leads import csv_import, import_job, service, verify_job
from imail.leads.export import export_leads
from imail.leads.schemas import (
    Lead,
    LeadBulkCreate,
    LeadBulkResult,
    LeadCreate,
    LeadDeleted,
    LeadFilter,
    LeadImport,
    LeadTagChange,
    LeadTagChangeResult,
    LeadUpdate,
    LeadVerify,
    VerificationFilter,
)
from imail.models.lead import InterestStatus, LeadStatus

router = APIRouter(
    prefix="/leads", tags=["Leads"], dependencies=[Depends(require_scope("leads")), Idempotent]
)


def lead_filter(
    campaign_id: Annotated[str | None, Query(description="Only this campaign's leads.")] = None,
    status: Annotated[LeadStatus | None, Query()] = None,
    interest_status: Annotated[InterestStatus | None, Query()] = None,
    email: Annotated[str | None, Query(description="An exact address (any casing).")] = None,
    tag: Annotated[
        list[str] | None,
        Query(
            description="Leads carrying this tag (any casing); repeat it (`?tag=a&tag=b`) for leads "
            "carrying all."
        ),
    ] = None,
    verification_status: Annotated[
        VerificationFilter | None, Query(description="The last verification's outcome, or `unverified`.")
    ] = None,
) -> LeadFilter:
    return LeadFilter(
        campaign_id=campaign_id,
        status=status,
        interest_status=interest_status,
        email=email,
        tags=tag or [],
        verification_status=verification_status,
    )


FilterDep = Annotated[LeadFilter, Depends(lead_filter)]


@router.get("", response_model=Page[Lead])
async def list_leads(
    caller: CallerDep,
    session: SessionDep,
    params: Annotated[PageParams, Depends(page_params)],
    filters: FilterDep,
):
    """List leads, newest first."""
    rows = await service.list_leads(session, caller, params, filters)
    return build_page(rows, params, Lead)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV, streamed."}
    },
)
async def export_leads_csv(request: Request, caller: CallerDep, filters: FilterDep):
    """Every matching lead as CSV (the filters of the list), oldest first, streamed: every field, `tags`
    (`;`-separated), and a `custom_variables.<name>` column per variable name in use. Cells a spreadsheet
    would run as formulas (beginning with `=`, `+`, `-`, `@`, tab or carriage return) are prefixed with
    `'`."""
    chunks = await export_leads(request.app.state.database, caller.tenant, filters)
    return StreamingResponse(
        chunks, media_type=csv_export.MEDIA_TYPE, headers=csv_export.attachment("leads.csv")
    )


@router.post("/tags", response_model=LeadTagChangeResult)
async def change_lead_tags(body: LeadTagChange, caller: CallerDep, session: SessionDep):
    """Add and remove tags on every lead a filter matches (the list's filters), in one transaction."""
    return await service.change_tags(session, caller.tenant, body)


@router.post("", response_model=Lead, status_code=201)
async def create_lead(body: LeadCreate, caller: CallerDep, session: SessionDep):
    """Add one lead. 409 if the address is already in the campaign or is suppressed."""
    return await service.create_lead(session, caller, body)


@router.post("/bulk", response_model=LeadBulkResult)
async def create_leads_bulk(body: LeadBulkCreate, caller: CallerDep, session: SessionDep):
    """Add up to 5000 leads in one transaction, with a result per row: created, duplicate, suppressed or
    invalid. Bad rows are reported, not fatal; a repeated address counts once (later repeats are
    duplicates)."""
    # Answered as built (no response-model pass over 5000 rows); the shape is LeadBulkResult.
    return JSONBody(await service.create_leads_bulk(session, caller, body))


@router.post(
    "/import",
    response_model=LeadBulkResult,
    responses={
        202: {
            "model": Job,
            "description": "The file has more than IMAIL_IMPORT_JOB_THRESHOLD data rows: it was checked and "
            "queued as a `lead_import` job (GET /v1/jobs/{id}; `job.completed` when it ends).",
        }
    },
)
async def import_leads(
    form: Annotated[LeadImport, Form(media_type="multipart/form-data")],
    caller: CallerDep,
    session: SessionDep,
    request: Request,
):
    """Import leads from a CSV upload (multipart/form-data), streamed; results as for bulk, one per data row.

    A file of more than IMAIL_IMPORT_JOB_THRESHOLD data rows (default 10,000) is checked the same way, then
    imported in the background: the answer is 202 with the job, whose `errors` list the rows not created.
    Smaller files are imported before the answer."""
    settings = request.app.state.settings
    threshold = settings.import_job_threshold
    upload = form.file.file
    # Past the threshold the answer would outlast client and proxy timeouts: a job, whatever the client asked.
    if csv_import.count_rows(upload, form.delimiter, threshold + 1) > threshold:
        job = await import_job.start(
            session,
            caller.tenant,
            form.campaign_id,
            upload,
            form.mapping,
            form.delimiter,
            settings.jobs_chunk_rows,
        )
        body = Job.model_validate(jobs.view(job)).model_dump_json(by_alias=True)
        # RFC 7240: say the preference was honoured when the client stated one.
        applied = {"Preference-Applied": "respond-async"} if wants_async(request) else {}
        return Response(body, status_code=202, media_type="application/json", headers=applied)
    result = await csv_import.import_csv(
        session, caller, form.campaign_id, form.file.file, form.mapping, form.delimiter
    )
    return StreamingResponse(result.stream(), media_type="application/json")


@router.post(
    "/verify",
    response_model=Job,
    status_code=202,
    responses={202: {"description": "The `lead_verification` job (GET /v1/jobs/{id})."}},
)
async def verify_leads(body: LeadVerify, caller: CallerDep, session: SessionDep, request: Request):
    """Verify leads in the background: syntax, the domain's MX (or A) records, disposable domains and role
    addresses, stored on each lead as `verification_status` (valid, risky, invalid, unknown) with the reasons.
    Give `campaign_id`, `lead_ids`, or both."""
    if body.campaign_id is None and body.lead_ids is None:
        raise MissingField("give campaign_id or lead_ids: which leads to verify", "campaign_id")
    settings = request.app.state.settings
    job = await verify_job.start(
        session,
        caller.tenant,
        body.campaign_id,
        body.lead_ids,
        body.only_unverified,
        settings.jobs_chunk_rows,
    )
    return jobs.view(job)


def wants_async(request: Request) -> bool:
    """Whether the request's `Prefer` header asks for `respond-async` (RFC 7240)."""
    preferences = ",".join(request.headers.getlist("prefer"))
    return any(p.split(";")[0].strip().lower() == "respond-async" for p in preferences.split(","))


@router.get("/{lead_id}", response_model=Lead)
async def get_lead(lead_id: str, caller: CallerDep, session: SessionDep):
    """Retrieve a lead."""
    return await service.get_lead(session, caller, lead_id)


@router.patch("/{lead_id}", response_model=Lead)
async def update_lead(lead_id: str, body: LeadUpdate, caller: CallerDep, session: SessionDep):
    """Change a lead's fields, pause or resume it, or set its interest_status."""
    return await service.update_lead(session, caller, lead_id, body)


@router.delete("/{lead_id}", response_model=LeadDeleted)
async def delete_lead(lead_id: str, caller: CallerDep, session: SessionDep):
    """Delete a lead (GDPR) and add its address to the suppression list."""
    return await service.delete_lead(session, caller, lead_id)
