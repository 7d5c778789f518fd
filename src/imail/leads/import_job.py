"""A CSV import past `import_job_threshold` data rows, run as a background job (see imail.jobs).

The request reads and checks the whole file as the synchronous import does (a file that is not CSV, not UTF-8
or has a bad mapping is still a 400 and writes nothing), then stores its rows in the job's chunks, in the
database, so the worker that imports them may run on another machine. Each chunk is then written like a bulk
batch, in its own transaction: leads appear as the job progresses. A repeated address is found within a chunk
by the row it repeats, and across chunks by the campaign's unique address ("already a lead of this
campaign")."""

from __future__ import annotations

from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.jobs import service as jobs
from imail.kit.tenancy import Tenant
from imail.leads import csv_import
from imail.leads.service import LeadWriter, campaign_for_tenant, window_zone
from imail.models import Job, JobKind

COUNTERS = ("created", "duplicates", "suppressed", "invalid")


async def start(
    session: AsyncSession,
    tenant: Tenant,
    campaign_id: str,
    upload: IO[bytes],
    mapping_raw: str | None,
    delimiter: str | None,
    chunk_rows: int,
) -> Job:
    """Check the file and queue its rows as a `lead_import` job, in the caller's transaction."""
    campaign = await campaign_for_tenant(session, tenant, campaign_id)
    with csv_import.decoded(upload) as text:
        mapping, width, rows = csv_import.parse_rows(text, mapping_raw, delimiter)
        params = {"campaign_id": campaign.id, "width": width, "mapping": csv_import.mapping_to_json(mapping)}
        result = {"campaign_id": campaign.id, **dict.fromkeys(COUNTERS, 0)}
        job = await jobs.create_job(session, tenant, JobKind.lead_import.value, params, [], result)
        seq = 0
        chunk: list[list[Any]] = []
        for index, line, record in rows:
            chunk.append([index, line, record])
            if len(chunk) >= chunk_rows:
                await jobs.add_chunks(session, tenant, job, seq, [(len(chunk), chunk)])
                seq, chunk = seq + 1, []
        if chunk:
            await jobs.add_chunks(session, tenant, job, seq, [(len(chunk), chunk)])
    await session.flush()
    return job


async def _rows(settings: Settings, params: dict[str, Any], data: list[Any]) -> list[Any]:
    return data  # nothing slow to do outside the transaction


async def _write(
    session: AsyncSession, tenant: Tenant, params: dict[str, Any], data: list[Any]
) -> jobs.ChunkOutcome:
    campaign = await campaign_for_tenant(session, tenant, params["campaign_id"])
    zone = window_zone(campaign)
    mapping = csv_import.mapping_from_json(params["mapping"])
    width = params["width"]
    writer = LeadWriter(session, tenant, campaign)
    results = await writer.write(
        [
            (index, csv_import.prepare_record(record, width, mapping, zone), line)
            for index, line, record in data
        ]
    )
    errors = [
        {
            "row": r["index"],
            "line": r.get("line"),
            "code": r["status"],
            "message": r["reason"],
            "field": r["field"],
            "email": r["email"],
        }
        for r in results
        if r["status"] != "created"
    ]
    return jobs.ChunkOutcome(done=len(results), errors=errors, counts=writer.totals())


HANDLER = jobs.JobHandler(work=_rows, write=_write)
