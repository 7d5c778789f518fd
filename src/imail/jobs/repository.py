"""Job SQL: the tenant's view for the API, and the workers' cross-tenant queue (claims under a lease)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imail.kit.pagination import PageParams
from imail.kit.repository import Repository, TenantRepository
from imail.kit.sql import rowcount
from imail.models import Job, JobItem, JobStatus

UNFINISHED = (JobStatus.queued.value, JobStatus.running.value)


class JobRepository(TenantRepository[Job]):
    model = Job

    async def list_page(self, params: PageParams, kind: str | None, status: str | None) -> list[Job]:
        stmt = self.select()
        if kind is not None:
            stmt = stmt.where(Job.kind == kind)
        if status is not None:
            stmt = stmt.where(Job.status == status)
        return await self.page(params, stmt)

    async def get_for_update(self, job_id: str) -> Job | None:
        stmt = self.select().where(Job.id == job_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add_items(self, job_id: str, chunks: Sequence[tuple[int, int, list[Any]]]) -> None:
        """(seq, size, data) chunks of the job's input."""
        if chunks:
            await self.session.execute(
                insert(JobItem),
                [{"job_id": job_id, "seq": seq, "size": size, "data": data} for seq, size, data in chunks],
            )

    async def drop_items(self, job_id: str) -> None:
        await self.session.execute(delete(JobItem).where(JobItem.job_id == job_id))


class JobQueue(Repository[Job]):
    """The workers' view: unfinished jobs of every tenant, claimed under a lease as webhook deliveries are."""

    model = Job

    def __init__(self, session: AsyncSession):
        super().__init__(session)
        self.postgres = session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]

    async def claim(
        self, now: datetime, lease_until: datetime, token: str, job_id: str | None = None
    ) -> Job | None:
        """Take the oldest unfinished job nobody holds (never claimed, or its lease ran out: its worker died).
        PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent claims never take the same job, and a job whose
        worker is committing a chunk right now (its row locked) is skipped; SQLite serialises writers."""
        # Core, not the ORM's bulk UPDATE: this runs every second per worker, mostly finding nothing.
        jobs = Job.__table__.c
        free = (
            select(jobs.id)
            .where(jobs.status.in_(UNFINISHED), or_(jobs.lease_until.is_(None), jobs.lease_until < now))
            .order_by(jobs.id)
            .limit(1)
        )
        if job_id is not None:
            free = free.where(jobs.id == job_id)
        if self.postgres:
            cte = free.with_for_update(skip_locked=True).cte("free").prefix_with("MATERIALIZED")
            stmt = update(Job.__table__).where(jobs.id == cte.c.id)
        else:
            stmt = update(Job.__table__).where(jobs.id.in_(free.scalar_subquery()))
        stmt = stmt.values(
            status=JobStatus.running.value,
            claimed_by=token,
            lease_until=lease_until,
            started_at=func.coalesce(jobs.started_at, now),
            updated_at=now,
        ).returning(jobs.id)
        job_id = (await self.session.execute(stmt)).scalar_one_or_none()
        return None if job_id is None else await self.session.get(Job, job_id, populate_existing=True)

    async def renew(self, job_id: str, token: str, now: datetime, lease_until: datetime) -> Job | None:
        """Extend this worker's lease and lock the job row for the rest of the transaction; None if the claim
        is no longer ours (the lease ran out and another worker took the job) or the job was cancelled."""
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.claimed_by == token, Job.status == JobStatus.running.value)
            .values(lease_until=lease_until, updated_at=now)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        if (await self.session.execute(stmt)).scalar_one_or_none() is None:
            return None
        return await self.session.get(Job, job_id, populate_existing=True)

    async def load(self, job_id: str) -> Job:
        return await self.session.get_one(Job, job_id, populate_existing=True)

    async def next_item(self, job_id: str) -> JobItem | None:
        stmt = select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.seq).limit(1)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def take_item(self, job_id: str, seq: int) -> bool:
        """Delete a chunk being processed (in the transaction that records its outcome); False if it's
        gone."""
        result = await self.session.execute(
            delete(JobItem).where(JobItem.job_id == job_id, JobItem.seq == seq),
            execution_options={"synchronize_session": False},
        )
        return rowcount(result) == 1

    async def release(self, job_id: str, token: str, now: datetime, due: datetime | None) -> None:
        """Give the job back (shutting down, or after a crash: `due` is when it may be claimed again)."""
        await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.claimed_by == token)
            .values(claimed_by=None, lease_until=due, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def drop_items(self, job_id: str) -> None:
        await self.session.execute(delete(JobItem).where(JobItem.job_id == job_id))
