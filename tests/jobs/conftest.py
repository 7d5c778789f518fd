from __future__ import annotations

import asyncio

import pytest

from imail.config import Settings
from imail.db import Database
from imail.jobs import service
from imail.kit.clock import utcnow
from imail.workers.jobs import HANDLERS
from tests.conftest import make_settings

THRESHOLD = 5
CHUNK = 3


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Small numbers, so a few rows make a job of several chunks.
    return make_settings(
        database_url, import_job_threshold=THRESHOLD, jobs_chunk_rows=CHUNK, jobs_max_errors=4
    )


async def run_jobs(database: Database, settings: Settings, token: str = "test#1") -> int:
    """What the jobs worker does, in this process, until no job is left."""
    total = 0
    while done := await service.run_next(database, settings, HANDLERS, token, utcnow, asyncio.Event()):
        total += done
    return total
