"""`/v1/jobs`: background work started by other endpoints (a big CSV import, a verification run)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.idempotency.deps import Idempotent
from imail.jobs import service
from imail.jobs.schemas import Job, JobState
from imail.kit.clock import utcnow
from imail.kit.pagination import Page, PageParams, build_page, page_params
from imail.models.job import JobKind

# Every job so far is lead work (imports, verification), so jobs share the leads scopes.
router = APIRouter(prefix="/jobs", tags=["Jobs"], dependencies=[Depends(require_scope("leads")), Idempotent])


@router.get("", response_model=Page[Job])
async def list_jobs(
    caller: CallerDep,
    session: SessionDep,
    params: Annotated[PageParams, Depends(page_params)],
    kind: Annotated[JobKind | None, Query()] = None,
    status: Annotated[JobState | None, Query()] = None,
):
    """List jobs, newest first. Needs `leads:read`."""
    rows = await service.list_jobs(session, caller.tenant, params, kind.value if kind else None, status)
    return build_page([service.view(job) for job in rows], params, Job)


@router.get("/{job_id}", response_model=Job)
async def get_job(job_id: str, caller: CallerDep, session: SessionDep):
    """A job's status, progress, failed rows and result. Poll it, or subscribe to `job.completed`."""
    return service.view(await service.get_job(session, caller.tenant, job_id))


@router.post("/{job_id}/cancel", response_model=Job)
async def cancel_job(job_id: str, caller: CallerDep, session: SessionDep):
    """Stop a queued or running job: rows not yet processed are dropped, those processed stay (409 if it has
    already finished). A `job.completed` event with status `cancelled` follows."""
    return service.view(await service.cancel_job(session, caller.tenant, job_id, utcnow()))
