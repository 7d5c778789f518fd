"""The jobs worker: claim one background job under a lease and run it chunk by chunk (see
imail.jobs.service)."""

from __future__ import annotations

import secrets

from imail.jobs import service
from imail.leads import import_job, verify_job
from imail.models import JobKind
from imail.workers.context import WorkerContext

HANDLERS: dict[str, service.JobHandler] = {
    JobKind.lead_import.value: import_job.HANDLER,
    JobKind.lead_verification.value: verify_job.HANDLER,
}


async def run_jobs(ctx: WorkerContext) -> int:
    token = f"{ctx.instance_id}#{secrets.token_hex(4)}"
    return await service.run_next(ctx.database, ctx.settings, HANDLERS, token, ctx.clock, ctx.stopping)
