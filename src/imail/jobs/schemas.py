from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from typing_extensions import TypeAliasType

from imail.kit.schemas import ResponseModel
from imail.models.job import JobKind

# Named apart from the job.completed payload's JobStatus (the final three only).
JobState = TypeAliasType("JobState", Literal["queued", "running", "succeeded", "failed", "cancelled"])


class JobProgress(ResponseModel):
    done: int = Field(description="Rows processed so far (failed rows included).")
    total: int = Field(description="Rows the job has to process.")


class JobRowError(ResponseModel):
    row: int = Field(description="0-based position of the row among the job's rows (an import's data rows).")
    line: int | None = Field(
        None, description="Import: the file line the row ends on (the header is line 1)."
    )
    code: str = Field(description="What went wrong, as a word: invalid, duplicate, suppressed…")
    message: str
    field: str | None = Field(None, description="The lead field at fault, if one is.")
    email: str | None = Field(None, description="The row's address, when it could be read.")


class Job(ResponseModel):
    id: str
    object: Literal["job"] = "job"
    kind: JobKind = Field(description="lead_import (a big CSV upload) or lead_verification.")
    status: JobState = Field(
        description="queued → running → succeeded, failed (the job as a whole: see `failure`) or cancelled."
    )
    progress: JobProgress
    result: dict[str, Any] = Field(
        description="Kind-specific counters, growing as the job runs. lead_import: campaign_id, created, "
        "duplicates, suppressed, invalid."
    )
    errors: list[JobRowError] = Field(
        description="Rows that were not processed as asked, in order; at most IMAIL_JOBS_MAX_ERRORS of them."
    )
    error_count: int = Field(description="Every failed row, listed or not.")
    failure: str | None = Field(description="Why a failed job stopped.")
    livemode: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = Field(description="When a worker first took it.")
    finished_at: datetime | None
