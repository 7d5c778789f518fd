"""Job rules: creating a job with its input chunks, reading and cancelling it, and running it in a worker.

Running: a worker claims a job under a lease (`JobQueue.claim`), then for each chunk, lowest first: does the
chunk's slow work outside any transaction (`JobHandler.work`: DNS look-ups, say), then in one transaction
renews its lease (which also locks the job row, so no other worker can claim it meanwhile), deletes the chunk,
writes its effects (`JobHandler.write`) and adds its counts to the job. A worker killed at any point leaves
either the chunk and its effects both committed or neither; the next worker to claim the job (once the lease
has run out) carries on from the first chunk left, so every row is processed exactly once.

A row that cannot be processed is one of the job's `errors`, not a failure of the job. The job fails when its
kind's rules refuse the whole job (`ImailError` from the handler: the campaign was archived meanwhile), or
when it crashed `jobs_max_attempts` times in a row (a bug, or a database that keeps going away)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from imail.config import Settings
from imail.db import Database
from imail.errors import Conflict, ImailError, NotFound
from imail.events.service import record_event
from imail.events.types import JobCompleted
from imail.jobs.repository import JobQueue, JobRepository
from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant, tenant_of
from imail.models import Job, JobStatus
from imail.models.job import FINAL

log = structlog.get_logger("imail.jobs")

CRASH_BACKOFF = (5.0, 15.0, 60.0, 300.0)  # seconds before a crashed job may be claimed again


@dataclass
class ChunkOutcome:
    """What processing one chunk did: rows done, failed rows ({row, message, ...}), counters to add to
    `result`."""

    done: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class JobHandler:
    """How one kind of job processes a chunk. `work` runs outside any transaction and may be slow (network);
    `write` runs in the chunk's transaction with what `work` returned."""

    work: Callable[[Settings, dict[str, Any], list[Any]], Awaitable[Any]]
    write: Callable[[AsyncSession, Tenant, dict[str, Any], Any], Awaitable[ChunkOutcome]]


async def create_job(
    session: AsyncSession,
    tenant: Tenant,
    kind: str,
    params: dict[str, Any],
    chunks: Sequence[tuple[int, list[Any]]],
    result: dict[str, Any] | None = None,
) -> Job:
    """A queued job whose input is `chunks` of (rows, data), in the caller's transaction."""
    repo = JobRepository(session, tenant)
    job = repo.new(
        kind=kind,
        status=JobStatus.queued.value,
        params=params,
        total=sum(size for size, _ in chunks),
        done=0,
        result=dict(result or {}),
        errors=[],
        error_count=0,
        attempts=0,
    )
    await repo.add(job)
    await repo.add_items(job.id, [(seq, size, data) for seq, (size, data) in enumerate(chunks)])
    return job


async def add_chunks(
    session: AsyncSession, tenant: Tenant, job: Job, first: int, chunks: Sequence[tuple[int, list[Any]]]
) -> None:
    """More input for a job being created (a big upload is stored chunk by chunk as it is parsed)."""
    await JobRepository(session, tenant).add_items(
        job.id, [(first + i, size, data) for i, (size, data) in enumerate(chunks)]
    )
    job.total += sum(size for size, _ in chunks)


async def get_job(session: AsyncSession, tenant: Tenant, job_id: str) -> Job:
    job = await JobRepository(session, tenant).get(job_id)
    if job is None:
        raise NotFound(f"No job {job_id}")
    return job


async def list_jobs(
    session: AsyncSession, tenant: Tenant, params: PageParams, kind: str | None, status: str | None
) -> list[Job]:
    return await JobRepository(session, tenant).list_page(params, kind, status)


async def cancel_job(session: AsyncSession, tenant: Tenant, job_id: str, now: datetime) -> Job:
    """Stop a queued or running job: chunks not yet processed are dropped; those done stay done."""
    repo = JobRepository(session, tenant)
    job = await repo.get_for_update(job_id)
    if job is None:
        raise NotFound(f"No job {job_id}")
    if job.status in FINAL:
        raise Conflict(f"Job {job.id} is already {job.status}", "status")
    await repo.drop_items(job.id)
    await _finish(session, job, JobStatus.cancelled.value, now)
    return job


def view(job: Job) -> dict[str, Any]:
    """The API's shape of a job, from plain data."""
    return {
        "id": job.id,
        "object": "job",
        "kind": job.kind,
        "status": job.status,
        "progress": {"done": job.done, "total": job.total},
        "result": job.result,
        "errors": job.errors,
        "error_count": job.error_count,
        "failure": job.failure,
        "livemode": job.livemode,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


async def _finish(
    session: AsyncSession, job: Job, status: str, now: datetime, failure: str | None = None
) -> None:
    job.status = status
    job.failure = failure
    job.finished_at = now
    job.updated_at = now
    job.claimed_by = None
    job.lease_until = None
    await session.flush()
    await record_event(
        session,
        tenant_of(job),
        "job.completed",
        JobCompleted(
            job_id=job.id,
            kind=job.kind,
            status=status,
            total=job.total,
            done=job.done,
            failed=job.error_count,
        ),
    )


def _add_outcome(job: Job, outcome: ChunkOutcome, max_errors: int) -> None:
    job.done += outcome.done
    if outcome.errors:
        room = max(0, max_errors - len(job.errors))
        if room:
            job.errors = [
                *job.errors,
                *outcome.errors[:room],
            ]  # a new list: JSON columns see reassignment only
        job.error_count += len(outcome.errors)
    if outcome.counts:
        result = dict(job.result)
        for name, value in outcome.counts.items():
            result[name] = result.get(name, 0) + value
        job.result = result
    job.attempts = 0


async def run_next(
    database: Database,
    settings: Settings,
    handlers: dict[str, JobHandler],
    token: str,
    clock: Callable[[], datetime],
    stopping: Any,
    job_id: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Claim one job (the oldest free one, or `job_id`) and run it to its end (or until `stopping` is set, or
    its claim is lost). Returns the chunks processed plus one if a job was claimed (0: nothing to do).
    `on_progress` hears (done, total) after each chunk (the CLI's progress bar)."""
    lease = timedelta(seconds=settings.jobs_lease_seconds)
    now = clock()
    async with database.transaction() as session:
        job = await JobQueue(session).claim(now, now + lease, token, job_id)
        if job is None:
            return 0
        job_id, kind, tenant = job.id, job.kind, tenant_of(job)
        params = {**job.params, "job_id": job_id}  # handlers may key per-job state (a cache) on it
    handler = handlers.get(kind)
    processed = 1
    try:
        while True:
            if handler is None:
                raise RuntimeError(f"no handler for jobs of kind {kind!r}")
            async with database.read() as session:
                item = await JobQueue(session).next_item(job_id)
                seq, data = (item.seq, item.data) if item is not None else (None, None)
            if seq is None or data is None:
                async with database.transaction() as session:
                    now = clock()
                    current = await JobQueue(session).renew(job_id, token, now, now + lease)
                    if current is not None:
                        await _finish(session, current, JobStatus.succeeded.value, now)
                return processed
            prepared = await handler.work(settings, params, data)
            refused: ImailError | None = None
            async with database.transaction() as session:
                queue = JobQueue(session)
                now = clock()
                current = await queue.renew(job_id, token, now, now + lease)
                if current is None:
                    log.warning("job claim lost", job_id=job_id)
                    return processed
                if not await queue.take_item(job_id, seq):
                    continue  # not ours to process (can't happen while the claim holds; nothing to write)
                try:
                    async with session.begin_nested():
                        outcome = await handler.write(session, tenant, params, prepared)
                except ImailError as exc:
                    refused = exc
                else:
                    _add_outcome(current, outcome, settings.jobs_max_errors)
                    processed += 1
                    progress = (current.done, current.total)
                if refused is not None:
                    current = await queue.load(job_id)
                    await queue.drop_items(job_id)
                    await _finish(session, current, JobStatus.failed.value, now, refused.message)
                    log.info("job refused", job_id=job_id, reason=refused.message)
                    return processed
            if on_progress is not None:
                on_progress(*progress)
            if stopping.is_set():
                async with database.transaction() as session:
                    await JobQueue(session).release(job_id, token, clock(), None)
                return processed
    except Exception as exc:
        log.exception("job crashed", job_id=job_id, kind=kind)
        await _crashed(database, settings, job_id, token, clock(), exc)
        return processed


async def _crashed(
    database: Database, settings: Settings, job_id: str, token: str, now: datetime, exc: Exception
) -> None:
    async with database.transaction() as session:
        queue = JobQueue(session)
        job = await queue.renew(job_id, token, now, now)
        if job is None:
            return
        job.attempts += 1
        if job.attempts >= settings.jobs_max_attempts:
            await queue.drop_items(job_id)
            reason = f"stopped after {job.attempts} failed attempts; the last: {type(exc).__name__}: {exc}"
            await _finish(session, job, JobStatus.failed.value, now, reason[:2000])
            return
        wait = CRASH_BACKOFF[min(job.attempts, len(CRASH_BACKOFF)) - 1]
        await queue.release(job_id, token, now, now + timedelta(seconds=wait))
