"""`POST /v1/leads/bulk`: per-row results with exact counts, one transaction, the 5000 cap, versioning."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, select

from imail.models import Lead
from tests.fixtures.outreach import assert_error, counts, create_campaign


@pytest.fixture
async def campaign(client, workspace) -> dict:
    return await create_campaign(client, workspace.headers(), [])


async def lead_count(database, campaign_id: str) -> int:
    async with database.transaction() as session:
        stmt = select(func.count()).select_from(Lead).where(Lead.campaign_id == campaign_id)
        return (await session.execute(stmt)).scalar_one()


async def test_5000_mixed_rows_give_exact_per_row_results(client, database, workspace, campaign):
    h, cid = workspace.headers(), campaign["id"]
    # Already in the campaign, and on the suppression list (by address, and by domain).
    pre = await client.post(
        "/v1/leads/bulk",
        headers=h,
        json={"campaign_id": cid, "leads": [{"email": f"old{i}@example.com"} for i in range(200)]},
    )
    assert pre.json()["created"] == 200
    for i in range(100):
        assert (
            await client.post("/v1/suppressions", headers=h, json={"email": f"blocked{i}@example.com"})
        ).status_code == 201
    assert (
        await client.post("/v1/suppressions", headers=h, json={"domain": "competitor.example"})
    ).status_code == 201

    rows: list[object] = []
    expected: list[str] = []
    fresh = 0
    while len(rows) < 5000:
        i = len(rows)
        kind = i % 25
        if kind == 0:
            rows.append({"email": f"bad-{i}"})
            expected.append("invalid")
        elif kind == 1:
            rows.append({"email": f"ok{i}@example.com", "country": "Narnia"})
            expected.append("invalid")
        elif kind == 2:
            rows.append({"email": f"ok{i}@example.com", "unknown_field": 1})
            expected.append("invalid")
        elif kind == 3:
            rows.append(["not", "an", "object"])
            expected.append("invalid")
        elif kind == 4 and fresh > 0:
            rows.append({"email": f"NEW{fresh - 1}@Example.com"})
            expected.append("duplicate")  # repeats a row above
        elif kind == 5 and i // 25 < 200:
            rows.append({"email": f"old{i // 25}@example.com"})
            expected.append("duplicate")
        elif kind == 6 and i // 25 < 100:
            rows.append({"email": f"Blocked{i // 25}@example.com"})
            expected.append("suppressed")
        elif kind == 7:
            rows.append({"email": f"person{i}@competitor.example"})
            expected.append("suppressed")
        else:
            rows.append(
                {
                    "email": f"new{fresh}@example.com",
                    "first_name": f"N{fresh}",
                    "country": "US",
                    "custom_variables": {"k": fresh},
                }
            )
            expected.append("created")
            fresh += 1

    response = await client.post("/v1/leads/bulk", headers=h, json={"campaign_id": cid, "leads": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    tally = Counter(expected)
    assert body["object"] == "lead_bulk_result" and body["campaign_id"] == cid and body["total"] == 5000
    assert (body["created"], body["duplicates"], body["suppressed"], body["invalid"]) == (
        tally["created"],
        tally["duplicate"],
        tally["suppressed"],
        tally["invalid"],
    )
    assert [r["index"] for r in body["results"]] == list(range(5000))
    assert [r["status"] for r in body["results"]] == expected

    results = body["results"]
    assert (
        results[0]
        == {
            "index": 0,
            "status": "invalid",
            "id": None,
            "email": None,
            "field": "email",
            "reason": results[0]["reason"],
        }
        and "@-sign" in results[0]["reason"]
    )
    assert (
        results[1]["field"] == "country"
        and results[2]["field"] == "unknown_field"
        and results[3]["field"] is None
    )
    repeated = rows[29]["email"].lower()
    original = next(j for j, row in enumerate(rows) if isinstance(row, dict) and row.get("email") == repeated)
    assert (
        results[29]["email"] == repeated and results[29]["reason"] == f"repeats the address of row {original}"
    )
    assert results[30]["reason"] == "already a lead of this campaign"
    assert (
        "suppression list" in results[31]["reason"] and "domain competitor.example" in results[32]["reason"]
    )
    created = [r for r in results if r["status"] == "created"]
    assert all(r["id"].startswith("lead_") and r["reason"] is None for r in created)
    assert await lead_count(database, cid) == 200 + tally["created"]
    stored = (await client.get(f"/v1/leads/{created[0]['id']}", headers=h)).json()
    assert (stored["email"], stored["timezone"], stored["custom_variables"]) == (
        "new0@example.com",
        "America/New_York",
        {"k": 0},
    )


async def test_a_repeated_address_counts_once(client, database, workspace, campaign):
    rows = [
        {"email": "Ana@Example.com"},
        {"email": "ana@example.com"},
        {"email": " ANA@EXAMPLE.COM "},
        {"email": "bo@example.com"},
    ]
    body = (
        await client.post(
            "/v1/leads/bulk", headers=workspace.headers(), json={"campaign_id": campaign["id"], "leads": rows}
        )
    ).json()
    assert (body["created"], body["duplicates"]) == (2, 2)
    assert [r["status"] for r in body["results"]] == ["created", "duplicate", "duplicate", "created"]
    assert await lead_count(database, campaign["id"]) == 2
    again = (
        await client.post(
            "/v1/leads/bulk", headers=workspace.headers(), json={"campaign_id": campaign["id"], "leads": rows}
        )
    ).json()
    assert (again["created"], again["duplicates"]) == (0, 4)


async def test_5001_rows_is_400_and_writes_nothing(client, database, workspace, campaign):
    before = await counts(database)
    rows = [{"email": f"l{i}@example.com"} for i in range(5001)]
    error = assert_error(
        await client.post(
            "/v1/leads/bulk", headers=workspace.headers(), json={"campaign_id": campaign["id"], "leads": rows}
        ),
        400,
        "leads",
    )
    assert "5000" in error["message"] and "5001" in error["message"]
    assert_error(
        await client.post(
            "/v1/leads/bulk", headers=workspace.headers(), json={"campaign_id": campaign["id"], "leads": []}
        ),
        400,
        "leads",
    )
    assert_error(
        await client.post(
            "/v1/leads/bulk",
            headers=workspace.headers(),
            json={"campaign_id": "cmp_01HZZZZZZZZZZZZZZZZZZZZZZZ", "leads": rows[:3]},
        ),
        400,
        "campaign_id",
    )
    assert_error(
        await client.post("/v1/leads/bulk", headers=workspace.headers(), json={"leads": rows[:3]}),
        400,
        "campaign_id",
        "missing_field",
    )
    assert_error(
        await client.post(
            "/v1/leads/bulk",
            headers=workspace.headers(),
            json={"campaign_id": campaign["id"], "leads": {"email": "a@example.com"}},
        ),
        400,
        "leads",
    )
    assert await counts(database) == before


async def test_bulk_is_one_transaction(client, database, workspace, campaign, monkeypatch):
    """An error after the insert leaves nothing behind: the whole call is one transaction."""
    from imail.errors import Conflict
    from imail.leads import service

    original = service.LeadWriter.write

    async def write_then_fail(self, rows):
        await original(self, rows)
        assert await lead_count(database, campaign["id"]) == 0  # not visible outside the transaction
        raise Conflict("failing after the insert")

    monkeypatch.setattr(service.LeadWriter, "write", write_then_fail)
    response = await client.post(
        "/v1/leads/bulk",
        headers=workspace.headers(),
        json={"campaign_id": campaign["id"], "leads": [{"email": "a@example.com"}]},
    )
    assert response.status_code == 409
    assert await lead_count(database, campaign["id"]) == 0
    monkeypatch.undo()
    response = await client.post(
        "/v1/leads/bulk",
        headers=workspace.headers(),
        json={"campaign_id": campaign["id"], "leads": [{"email": "a@example.com"}]},
    )
    assert response.json()["created"] == 1


async def test_concurrent_calls_with_overlapping_addresses(client, database, workspace, campaign):
    """Two calls racing on the same addresses: each address is created once, the loser reports duplicates."""
    rows = [{"email": f"race{i}@example.com"} for i in range(300)]
    first, second = await asyncio.wait_for(
        asyncio.gather(
            *(
                client.post(
                    "/v1/leads/bulk",
                    headers=workspace.headers(),
                    json={"campaign_id": campaign["id"], "leads": rows},
                )
                for _ in range(2)
            )
        ),
        timeout=60,
    )
    bodies = [first.json(), second.json()]
    assert sorted(b["created"] for b in bodies) == [0, 300]
    assert sum(b["duplicates"] for b in bodies) == 300
    assert await lead_count(database, campaign["id"]) == 300


async def test_bulk_exists_from_2026_04_22(client, workspace, campaign):
    for i, (version, status) in enumerate(
        [("2026-03-10", 404), ("2026-04-21", 404), ("2026-04-22", 200), (None, 200)]
    ):
        headers = workspace.headers(**({"Imail-Version": version} if version else {}))
        response = await client.post(
            "/v1/leads/bulk",
            headers=headers,
            json={"campaign_id": campaign["id"], "leads": [{"email": f"a{i}@example.com"}]},
        )
        assert response.status_code == status, (version, response.text[:500])
        if status == 404:
            error = response.json()["error"]
            assert error["code"] == "not_found" and "2026-03-10" in error["message"]
            # The single create is there in every version.
            single = await client.post(
                "/v1/leads",
                headers=headers,
                json={"campaign_id": campaign["id"], "email": f"b{i}@example.com"},
            )
            assert single.status_code == 201
        else:
            assert response.json()["created"] == 1
