"""Real `imail worker` processes: a job whose worker is SIGKILLed mid-run is taken over by another worker once
its lease runs out, and every row is imported exactly once (a chunk processed twice would show as rows
"already a lead of this campaign"; one skipped, as a lead missing)."""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import func, select

from imail.db import Database
from imail.models import Job, JobItem, Lead
from tests.fixtures.outreach import create_campaign
from tests.webhooks.test_processes import Workers, wait_until

pytestmark = pytest.mark.slow

ROWS = 1200  # 400 chunks of 3 (tests/jobs/conftest.py): the kill lands well inside the job


@pytest.fixture
def workers(database, database_url, tmp_path):
    spawned = Workers(database_url, tmp_path)
    yield spawned
    spawned.stop_all()


async def job_state(database: Database, job_id: str) -> Job:
    async with database.transaction() as session:
        return (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()


async def test_sigkill_mid_job_then_another_worker_finishes_it_exactly_once(
    client, workspace, database, workers
):
    campaign = await create_campaign(client, workspace.headers(), [])
    body = "email,first_name\n" + "".join(f"lead{i}@example.com,L{i}\n" for i in range(ROWS))
    response = await client.post(
        "/v1/leads/import",
        headers=workspace.headers(Prefer="respond-async"),
        data={"campaign_id": campaign["id"]},
        files={"file": ("leads.csv", body.encode(), "text/csv")},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    async def progressed(minimum: int) -> bool:
        return (await job_state(database, job_id)).done >= minimum

    # A short lease, so the second worker takes the job over soon after the kill.
    first = workers.start(jobs_lease_seconds="2")
    await wait_until(lambda: progressed(150), 60, "the first worker to import 150 rows", workers)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed = await job_state(database, job_id)
    assert killed.status == "running" and killed.done < ROWS, "the kill came too late to test anything"
    assert killed.claimed_by is not None and killed.lease_until is not None  # left holding its lease
    async with database.transaction() as session:
        leads_at_kill = (await session.execute(select(func.count()).select_from(Lead))).scalar_one()
    assert leads_at_kill == killed.done  # committed chunks and progress move together

    second = workers.start(jobs_lease_seconds="2")
    await wait_until(lambda: _finished(database, job_id), 120, "the second worker to finish the job", workers)
    done = await job_state(database, job_id)
    assert done.status == "succeeded", done.failure
    assert (done.done, done.total, done.error_count, done.errors) == (ROWS, ROWS, 0, [])
    assert done.result == {
        "campaign_id": campaign["id"],
        "created": ROWS,
        "duplicates": 0,
        "suppressed": 0,
        "invalid": 0,
    }
    assert done.claimed_by is None and done.finished_at is not None
    async with database.transaction() as session:
        emails = (await session.execute(select(Lead.email))).scalars().all()
        items_left = (await session.execute(select(func.count()).select_from(JobItem))).scalar_one()
    assert sorted(emails) == sorted(f"lead{i}@example.com" for i in range(ROWS))
    assert items_left == 0
    assert second.poll() is None  # still running: it finished the job, it did not die on it


async def _finished(database: Database, job_id: str) -> bool:
    return (await job_state(database, job_id)).status != "running"


async def test_sigkill_mid_verification_then_another_worker_finishes_it(
    client, workspace, database, workers, dns_server
):
    """The same for a verification job: its counts add up to the leads exactly (a chunk verified twice would
    count twice), and every lead has its result."""
    dns_server.zone.add("acme-mail.com", "MX", "10 mx.acme-mail.com.")
    campaign = await create_campaign(client, workspace.headers(), [])
    total = 600
    for start in range(0, total, 300):
        leads = [
            {"email": f"v{i}@acme-mail.com" if i % 3 else f"v{i}@ghost{i % 7}.com"}
            for i in range(start, start + 300)
        ]
        added = await client.post(
            "/v1/leads/bulk",
            headers=workspace.headers(),
            json={"campaign_id": campaign["id"], "leads": leads},
        )
        assert added.json()["created"] == 300
    response = await client.post(
        "/v1/leads/verify", headers=workspace.headers(), json={"campaign_id": campaign["id"]}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    async def progressed(minimum: int) -> bool:
        return (await job_state(database, job_id)).done >= minimum

    env = {"jobs_lease_seconds": "2", "dns_resolver": dns_server.address, "dns_timeout": "2"}
    first = workers.start(**env)
    await wait_until(lambda: progressed(60), 60, "the first worker to verify 60 leads", workers)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed = await job_state(database, job_id)
    assert killed.status == "running" and killed.done < total, "the kill came too late to test anything"

    workers.start(**env)
    await wait_until(lambda: _finished(database, job_id), 120, "the second worker to finish the job", workers)
    done = await job_state(database, job_id)
    assert done.status == "succeeded", done.failure
    assert done.done == done.total == total
    assert done.result == {"valid": 400, "risky": 0, "invalid": 200, "unknown": 0}
    async with database.transaction() as session:
        statuses = (await session.execute(select(Lead.verification_status))).scalars().all()
    assert sorted(statuses) == ["invalid"] * 200 + ["valid"] * 400
