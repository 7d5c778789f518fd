"""Background jobs through the API: a big CSV import answers 202 with a job, the worker runs it chunk by
chunk, `GET /v1/jobs/{id}` shows progress, failed rows and the result, `job.completed` is recorded; tenancy,
scopes, idempotency and cancellation."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from imail.jobs import service
from imail.kit.clock import utcnow
from imail.models import Event, JobItem, Lead
from imail.workers.jobs import HANDLERS
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, create_campaign
from tests.jobs.conftest import run_jobs


@pytest.fixture
async def campaign(client, workspace) -> dict:
    return await create_campaign(client, workspace.headers(), [])


def csv_of(rows: list[str]) -> str:
    return "email,first_name\n" + "".join(f"{row}\n" for row in rows)


async def upload(
    client, headers, campaign_id: str, content: str, prefer: str | None = "respond-async", **form
):
    """An import from a client that takes a 202 (`Prefer: respond-async`), unless `prefer` says otherwise."""
    return await client.post(
        "/v1/leads/import",
        headers={**headers, **({"Prefer": prefer} if prefer else {})},
        data={"campaign_id": campaign_id, **form},
        files={"file": ("leads.csv", content.encode(), "text/csv")},
    )


async def count(database, model, *where) -> int:
    async with database.transaction() as session:
        return (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def test_small_file_is_still_imported_at_once(client, workspace, campaign, database):
    response = await upload(
        client, workspace.headers(), campaign["id"], csv_of([f"p{i}@example.com,P{i}" for i in range(5)])
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 5


async def test_without_prefer_a_big_file_runs_as_a_job_too(client, workspace, campaign, database):
    """Past the threshold the import is a job whatever the client asked; `Preference-Applied` only answers a
    `Prefer` that asked for it."""
    rows = [f"p{i}@example.com,P{i}" for i in range(12)]
    response = await upload(client, workspace.headers(), campaign["id"], csv_of(rows), prefer=None)
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "lead_import" and "preference-applied" not in response.headers
    listed = (await client.get("/v1/jobs", headers=workspace.headers())).json()
    assert [job["id"] for job in listed["data"]] == [response.json()["id"]]


async def test_big_file_runs_as_a_job(client, workspace, campaign, database, settings):
    rows = [f"p{i}@example.com,P{i}" for i in range(10)]
    rows[2] = "not-an-address,X"
    rows[6] = "P1@example.com,again"  # repeats row 1, in another chunk
    rows[7] = "p7@example.com,Seven,extra"
    response = await upload(client, workspace.headers(), campaign["id"], csv_of(rows))
    assert response.status_code == 202, response.text
    assert response.headers["preference-applied"] == "respond-async"
    job = response.json()
    assert (job["object"], job["kind"], job["status"]) == ("job", "lead_import", "queued")
    assert job["progress"] == {"done": 0, "total": 10}
    assert job["result"] == {
        "campaign_id": campaign["id"],
        "created": 0,
        "duplicates": 0,
        "suppressed": 0,
        "invalid": 0,
    }
    assert await count(database, Lead) == 0  # nothing imported until a worker runs it
    assert await count(database, JobItem) == 4  # 10 rows in chunks of 3

    assert await run_jobs(database, settings) > 0
    done = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert done["status"] == "succeeded", done
    assert done["progress"] == {"done": 10, "total": 10}
    assert done["result"] == {
        "campaign_id": campaign["id"],
        "created": 7,
        "duplicates": 1,
        "suppressed": 0,
        "invalid": 2,
    }
    assert done["error_count"] == 3
    assert [(e["row"], e["line"], e["code"], e["field"]) for e in done["errors"]] == [
        (2, 4, "invalid", "email"),
        (6, 8, "duplicate", None),
        (7, 9, "invalid", None),
    ]
    assert done["errors"][1]["message"] == "already a lead of this campaign"
    assert done["started_at"] and done["finished_at"] and done["failure"] is None
    assert await count(database, Lead) == 7
    assert await count(database, JobItem) == 0

    async with database.transaction() as session:
        events = (await session.execute(select(Event).where(Event.type == "job.completed"))).scalars().all()
    assert [e.data for e in events] == [
        {
            "job_id": job["id"],
            "kind": "lead_import",
            "status": "succeeded",
            "total": 10,
            "done": 10,
            "failed": 3,
        }
    ]

    listed = (await client.get("/v1/jobs", headers=workspace.headers())).json()
    assert [j["id"] for j in listed["data"]] == [job["id"]]
    assert (await client.get("/v1/jobs?status=queued", headers=workspace.headers())).json()["data"] == []
    assert (
        await client.get("/v1/jobs?kind=lead_import&status=succeeded", headers=workspace.headers())
    ).json()["data"]


async def test_errors_are_bounded_but_all_counted(client, workspace, campaign, database, settings):
    response = await upload(client, workspace.headers(), campaign["id"], csv_of(["bad,B"] * 9))
    job = response.json()
    await run_jobs(database, settings)
    done = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert done["error_count"] == 9 and len(done["errors"]) == 4  # jobs_max_errors in tests/jobs/conftest.py
    assert [e["row"] for e in done["errors"]] == [0, 1, 2, 3]


async def test_a_bad_file_is_refused_before_any_job(client, workspace, campaign, database):
    rows = [f"p{i}@example.com,P{i}" for i in range(8)] + ['"broken,quote']
    response = await upload(client, workspace.headers(), campaign["id"], csv_of(rows) + "x\n" * 3)
    assert_error(response, 400, "file")
    response = await upload(
        client,
        workspace.headers(),
        campaign["id"],
        csv_of([f"p{i}@example.com,P{i}" for i in range(8)]),
        mapping=json.dumps({"email": "Nope"}),
    )
    assert_error(response, 400, "mapping.email")
    assert await count(database, JobItem) == 0
    assert (await client.get("/v1/jobs", headers=workspace.headers())).json()["data"] == []


async def test_archived_campaign_fails_the_job(client, workspace, campaign, database, settings):
    response = await upload(
        client, workspace.headers(), campaign["id"], csv_of([f"p{i}@example.com,P{i}" for i in range(8)])
    )
    job = response.json()
    archived = await client.delete(f"/v1/campaigns/{campaign['id']}", headers=workspace.headers())
    assert archived.status_code == 200, archived.text
    await run_jobs(database, settings)
    done = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert done["status"] == "failed" and "archived" in done["failure"]
    assert await count(database, Lead) == 0 and await count(database, JobItem) == 0


async def test_idempotent_upload_replays_the_same_job(client, workspace, campaign, database):
    """A retry sends the same bytes (the same multipart boundary): it gets the same 202 and job, not a second
    job. Bytes that differ (a client that draws a new boundary) are another request: 409, still no second
    job."""
    body = csv_of([f"p{i}@example.com,P{i}" for i in range(8)])
    headers = workspace.headers(
        **{"Idempotency-Key": "import-1", "Content-Type": "multipart/form-data; boundary=imail-retry"}
    )
    first = await upload(client, headers, campaign["id"], body)
    second = await upload(client, headers, campaign["id"], body)
    assert first.status_code == second.status_code == 202, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    reboundaried = {**headers, "Content-Type": "multipart/form-data; boundary=another"}
    assert_error(await upload(client, reboundaried, campaign["id"], body), 409, "Idempotency-Key")
    assert len((await client.get("/v1/jobs", headers=workspace.headers())).json()["data"]) == 1


async def test_tenancy_and_scopes(client, workspace, other_workspace, campaign, database):
    job = (
        await upload(
            client, workspace.headers(), campaign["id"], csv_of([f"p{i}@example.com,P{i}" for i in range(8)])
        )
    ).json()
    assert_error(await client.get(f"/v1/jobs/{job['id']}", headers=other_workspace.headers()), 404, None)
    assert (await client.get("/v1/jobs", headers=other_workspace.headers())).json()["data"] == []
    # The same workspace's other ledger does not see it either.
    assert_error(await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers(live=False)), 404, None)
    assert_error(
        await client.post(f"/v1/jobs/{job['id']}/cancel", headers=other_workspace.headers()), 404, None
    )

    reader = bearer(await make_key(database, workspace.workspace_id, scopes=["leads:read"]))
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=reader)).status_code == 200
    assert_error(await client.post(f"/v1/jobs/{job['id']}/cancel", headers=reader), 403, None)
    stranger = bearer(await make_key(database, workspace.workspace_id, scopes=["campaigns:read"]))
    assert_error(await client.get(f"/v1/jobs/{job['id']}", headers=stranger), 403, None)
    assert_error(await client.get("/v1/jobs?cursor=nonsense", headers=workspace.headers()), 400, "cursor")


async def test_cancel(client, workspace, campaign, database, settings):
    job = (
        await upload(
            client, workspace.headers(), campaign["id"], csv_of([f"p{i}@example.com,P{i}" for i in range(8)])
        )
    ).json()
    # A worker processes one chunk, then the job is cancelled under it.
    stop = asyncio.Event()
    token = "test#cancel"

    async def work(settings_, params, data):
        stop.set()
        return data

    handler = service.JobHandler(work=work, write=HANDLERS["lead_import"].write)
    cancelled = await client.post(f"/v1/jobs/{job['id']}/cancel", headers=workspace.headers())
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"]
    assert await service.run_next(database, settings, {"lead_import": handler}, token, utcnow, stop) == 0
    again = await client.post(f"/v1/jobs/{job['id']}/cancel", headers=workspace.headers())
    assert_error(again, 409, "status")
    assert await count(database, JobItem) == 0 and await count(database, Lead) == 0
    async with database.transaction() as session:
        statuses = (
            (await session.execute(select(Event.data).where(Event.type == "job.completed"))).scalars().all()
        )
    assert [s["status"] for s in statuses] == ["cancelled"]


async def test_stopping_worker_hands_the_job_back_after_its_chunk(
    client, workspace, campaign, database, settings
):
    job = (
        await upload(
            client, workspace.headers(), campaign["id"], csv_of([f"p{i}@example.com,P{i}" for i in range(8)])
        )
    ).json()
    stopping = asyncio.Event()
    stopping.set()  # SIGTERM: finish the chunk in hand, give the rest back
    await service.run_next(database, settings, HANDLERS, "test#a", utcnow, stopping)
    partial = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert partial["status"] == "running" and partial["progress"] == {"done": 3, "total": 8}
    await run_jobs(
        database, settings, token="test#b"
    )  # another worker takes it at once (no lease to wait out)
    done = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert done["status"] == "succeeded" and done["result"]["created"] == 8
    assert await count(database, Lead) == 8


async def test_a_job_that_keeps_crashing_fails(client, workspace, campaign, database, settings):
    job = (
        await upload(
            client, workspace.headers(), campaign["id"], csv_of([f"p{i}@example.com,P{i}" for i in range(8)])
        )
    ).json()

    async def crash(settings_, params, data):
        raise RuntimeError("a bug")

    handlers = {"lead_import": service.JobHandler(work=crash, write=HANDLERS["lead_import"].write)}
    twice = settings.model_copy(update={"jobs_max_attempts": 2})
    await service.run_next(database, twice, handlers, "test#1", utcnow, asyncio.Event())
    first = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert (first["status"], first["failure"]) == ("running", None)  # handed back, to be tried again later
    # Not before its back-off has passed; then once more, and that is the last time.
    assert await service.run_next(database, twice, handlers, "test#2", utcnow, asyncio.Event()) == 0
    later = lambda: utcnow() + timedelta(minutes=10)
    await service.run_next(database, twice, handlers, "test#2", later, asyncio.Event())
    failed = (await client.get(f"/v1/jobs/{job['id']}", headers=workspace.headers())).json()
    assert failed["status"] == "failed"
    assert failed["failure"] == "stopped after 2 failed attempts; the last: RuntimeError: a bug"
    assert await count(database, JobItem) == 0
