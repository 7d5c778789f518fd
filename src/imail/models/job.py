"""Background jobs: long work (a big CSV import, a verification run) done by the workers in chunks.

A job's input is stored as numbered chunks (`job_items`), in the database so that any worker on any machine
can take the job over. A worker claims a job under a lease; each chunk is processed, deleted and counted in
the job's progress in one transaction that also renews the lease, so a worker that dies leaves the job exactly
where its last committed chunk left it: the next worker to claim it carries on from the next chunk."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from imail.models.base import ID_LENGTH, Base, IdMixin, JSONType, TenantMixin, TimestampMixin


class JobStatus(StrEnum):
    queued = "queued"  # waiting for a worker
    running = "running"  # claimed at least once; a worker is (or was, until its lease runs out) on it
    succeeded = "succeeded"  # every chunk processed (rows may still have failed: see `errors`)
    failed = "failed"  # stopped by an error that is not a row's (the campaign was archived, a bug)
    cancelled = "cancelled"  # stopped on request; chunks already processed stay done


FINAL = (JobStatus.succeeded.value, JobStatus.failed.value, JobStatus.cancelled.value)


class JobKind(StrEnum):
    lead_import = "lead_import"
    lead_verification = "lead_verification"


class Job(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "jobs"
    id_prefix = "job"
    # The workers' claim: unfinished jobs whose lease is free or expired.
    __tenant_table_args__ = (Index(None, "status", "lease_until"),)

    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued.value)
    # What the job was asked to do (kind-specific, e.g. the import's campaign and column mapping).
    params: Mapped[dict[str, Any]] = mapped_column()
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    # Kind-specific counters, summed chunk by chunk (an import's created/duplicates/...).
    result: Mapped[dict[str, Any]] = mapped_column()
    # The first `jobs_max_errors` failed rows ({row, line, message, ...}); error_count counts them all.
    errors: Mapped[list[Any]] = mapped_column(JSONType)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str | None] = mapped_column(Text)  # why a failed job failed
    # Failed attempts in a row (an exception, not a row's error); the job fails at `jobs_max_attempts`.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class JobItem(Base):
    """One chunk of a job's input, deleted in the transaction that processes it: the rows left are the work
    left."""

    __tablename__ = "job_items"

    job_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)  # rows in the chunk (what its processing adds to `done`)
    data: Mapped[list[Any]] = mapped_column(JSONType)
