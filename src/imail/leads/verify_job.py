"""`POST /v1/leads/verify`: verify a campaign's leads (or given ones) as a background job (see imail.jobs).

The leads are read when the job is created (ids and addresses), ordered by domain and chunked, so one chunk's
DNS look-ups cover most of a domain's leads at once. `work` looks the domains up outside any transaction;
`write` stores each lead's status, reasons and time."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.errors import InvalidField
from imail.jobs import service as jobs
from imail.kit.clock import utcnow
from imail.kit.tenancy import Tenant
from imail.leads import verification
from imail.leads.repository import LeadRepository
from imail.leads.service import campaign_for_tenant
from imail.models import Job, JobKind
from imail.models.lead import VerificationStatus

COUNTERS = tuple(status.value for status in VerificationStatus)


async def start(
    session: AsyncSession,
    tenant: Tenant,
    campaign_id: str | None,
    lead_ids: list[str] | None,
    only_unverified: bool,
    chunk_rows: int,
) -> Job:
    if campaign_id is not None:
        await campaign_for_tenant(session, tenant, campaign_id)
    wanted = None if lead_ids is None else sorted(set(lead_ids))
    targets = await LeadRepository(session, tenant).verification_targets(campaign_id, wanted, only_unverified)
    if wanted is not None and not only_unverified:
        missing = sorted(set(wanted) - {lead_id for lead_id, _ in targets})
        if missing:
            where = f" in campaign {campaign_id}" if campaign_id else ""
            raise InvalidField(f"lead_ids: no lead {missing[0]}{where} in this workspace", "lead_ids")
    targets.sort(key=lambda target: (verification.domain_of(target[1]), target[0]))
    chunks = [
        (len(part), [list(t) for t in part])
        for part in (targets[i : i + chunk_rows] for i in range(0, len(targets), chunk_rows))
    ]
    params = {"campaign_id": campaign_id, "lead_ids": len(wanted) if wanted is not None else None}
    return await jobs.create_job(
        session, tenant, JobKind.lead_verification.value, params, chunks, dict.fromkeys(COUNTERS, 0)
    )


async def _verify(settings: Settings, params: dict[str, Any], data: list[Any]) -> list[list[Any]]:
    found = await verification.verify_emails(settings, [email for _, email in data], params.get("job_id"))
    return [[lead_id, *found[email]] for lead_id, email in data]


async def _write(
    session: AsyncSession, tenant: Tenant, params: dict[str, Any], verified: list[list[Any]]
) -> jobs.ChunkOutcome:
    await LeadRepository(session, tenant).set_verification(
        [(lead_id, status, reasons) for lead_id, status, reasons in verified], utcnow()
    )
    counts = dict.fromkeys(COUNTERS, 0)
    for _, status, _ in verified:
        counts[status] += 1
    return jobs.ChunkOutcome(done=len(verified), counts=counts)


HANDLER = jobs.JobHandler(work=_verify, write=_write)
