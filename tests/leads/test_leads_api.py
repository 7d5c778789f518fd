"""`/v1/leads` one at a time: create (409s), zones, list filters, update, delete → suppression, tenancy."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from imail.models import Lead
from tests.fixtures.outreach import assert_error, counts, create_campaign


@pytest.fixture
async def campaign(client, workspace) -> dict:
    return await create_campaign(client, workspace.headers(), [])


async def add(client, headers, campaign_id: str, **fields) -> dict:
    response = await client.post("/v1/leads", headers=headers, json={"campaign_id": campaign_id, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_normalizes_and_infers_the_zone(client, workspace, campaign):
    h, cid = workspace.headers(), campaign["id"]
    lead = await add(
        client,
        h,
        cid,
        email="  Ana.Maria@Example.COM ",
        first_name=" Ana ",
        company="Acme",
        custom_variables={"seats": 12, "plan": "pro"},
    )
    assert lead["id"].startswith("lead_") and lead["object"] == "lead"
    assert lead["email"] == "ana.maria@example.com" and lead["first_name"] == "Ana"
    assert (lead["status"], lead["interest_status"], lead["livemode"]) == ("active", None, True)
    assert lead["custom_variables"] == {"seats": 12, "plan": "pro"}
    assert (lead["timezone"], lead["timezone_source"]) == ("UTC", "default")  # window zone is "lead"

    zones = {
        "tz@example.com": ({"timezone": "asia/tokyo", "country": "FR"}, ("Asia/Tokyo", "explicit")),
        "phone@example.com": (
            {"phone": "+1 415 555 0123", "country": "FR"},
            ("America/Los_Angeles", "phone"),
        ),
        "country@example.com": ({"country": "de"}, ("Europe/Berlin", "country")),
    }
    for email, (fields, expected) in zones.items():
        lead = await add(client, h, cid, email=email, **fields)
        assert (lead["timezone"], lead["timezone_source"]) == expected

    fixed = await create_campaign(client, h, [], send_window={"timezone": "America/Chicago"})
    lead = await add(client, h, fixed["id"], email="nozone@example.com")
    assert (lead["timezone"], lead["timezone_source"]) == ("America/Chicago", "campaign")
    # Changing the campaign's window zone moves the leads that took theirs from it, not the others.
    other = await add(client, h, fixed["id"], email="fr@example.com", country="FR")
    await client.patch(
        f"/v1/campaigns/{fixed['id']}", headers=h, json={"send_window": {"timezone": "Asia/Dubai"}}
    )
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=h)).json()["timezone"] == "Asia/Dubai"
    assert (await client.get(f"/v1/leads/{other['id']}", headers=h)).json()["timezone"] == "Europe/Paris"
    await client.patch(f"/v1/campaigns/{fixed['id']}", headers=h, json={"send_window": {"timezone": "lead"}})
    moved = (await client.get(f"/v1/leads/{lead['id']}", headers=h)).json()
    assert (moved["timezone"], moved["timezone_source"]) == ("UTC", "default")


async def test_duplicate_address_is_409_whatever_the_casing(client, database, workspace, campaign):
    h = workspace.headers()
    first = await add(client, h, campaign["id"], email="ana@example.com")
    error = assert_error(
        await client.post(
            "/v1/leads", headers=h, json={"campaign_id": campaign["id"], "email": "ANA@example.com"}
        ),
        409,
        "email",
    )
    assert first["id"] in error["message"]
    # The same address in another campaign is fine.
    other = await create_campaign(client, h, [])
    await add(client, h, other["id"], email="ana@example.com")
    assert (await counts(database))["leads"] == 2


async def test_invalid_create_is_400_and_writes_nothing(client, database, workspace, campaign):
    cases = [
        ({"email": "not-an-address"}, "email"),
        ({"email": "ana@example"}, "email"),
        ({}, "email"),
        ({"email": "a@example.com", "country": "ZZ"}, "country"),
        ({"email": "a@example.com", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"email": "a@example.com", "custom_variables": {"has space": 1}}, "custom_variables.has space"),
        ({"email": "a@example.com", "custom_variables": {"deep": [1]}}, "custom_variables.deep"),
        ({"email": "a@example.com", "company": "x" * 201}, "company"),
        ({"email": "a@example.com", "status": "paused"}, "status"),
        ({"email": "a@example.com", "campaign_id": "cmp_01HZZZZZZZZZZZZZZZZZZZZZZZ"}, "campaign_id"),
    ]
    before = await counts(database)
    for fields, field in cases:
        body = {"campaign_id": campaign["id"], **fields}
        assert_error(
            await client.post("/v1/leads", headers=workspace.headers(), json=body), 400, field, case=fields
        )
    assert await counts(database) == before


async def test_archived_campaign_takes_no_leads(client, database, workspace, campaign):
    await client.delete(f"/v1/campaigns/{campaign['id']}", headers=workspace.headers())
    response = await client.post(
        "/v1/leads",
        headers=workspace.headers(),
        json={"campaign_id": campaign["id"], "email": "a@example.com"},
    )
    assert "archived" in assert_error(response, 409, "campaign_id")["message"]
    assert (await counts(database))["leads"] == 0


async def test_list_filters_and_pages(client, workspace, campaign):
    h = workspace.headers()
    other = await create_campaign(client, h, [])
    made = [await add(client, h, campaign["id"], email=f"l{i}@example.com") for i in range(3)]
    await add(client, h, other["id"], email="elsewhere@example.com")
    await client.patch(
        f"/v1/leads/{made[1]['id']}", headers=h, json={"interest_status": "interested", "status": "paused"}
    )

    listed = (await client.get(f"/v1/leads?campaign_id={campaign['id']}&limit=2", headers=h)).json()
    assert [lead["email"] for lead in listed["data"]] == ["l2@example.com", "l1@example.com"]
    rest = (
        await client.get(
            f"/v1/leads?campaign_id={campaign['id']}&limit=2&cursor={listed['pagination']['next_cursor']}",
            headers=h,
        )
    ).json()
    assert [lead["email"] for lead in rest["data"]] == ["l0@example.com"] and rest["pagination"][
        "has_more"
    ] is False
    assert len((await client.get("/v1/leads", headers=h)).json()["data"]) == 4
    paused = (await client.get("/v1/leads?status=paused", headers=h)).json()["data"]
    assert [lead["id"] for lead in paused] == [made[1]["id"]]
    interested = (await client.get("/v1/leads?interest_status=interested", headers=h)).json()["data"]
    assert [lead["id"] for lead in interested] == [made[1]["id"]]
    by_email = (await client.get("/v1/leads?email=L0@Example.com", headers=h)).json()["data"]
    assert [lead["id"] for lead in by_email] == [made[0]["id"]]
    assert_error(await client.get("/v1/leads?status=sleeping", headers=h), 400, "status")
    assert_error(await client.get("/v1/leads?email=nope", headers=h), 400, "email")


async def test_update(client, database, workspace, campaign):
    h = workspace.headers()
    lead = await add(
        client,
        h,
        campaign["id"],
        email="ana@example.com",
        first_name="Ana",
        country="FR",
        custom_variables={"a": 1},
    )
    url = f"/v1/leads/{lead['id']}"
    for body, field in (
        ({"timezone": "Nowhere/Zone"}, "timezone"),
        ({"country": "QQ"}, "country"),
        ({"email": "new@example.com"}, "email"),
        ({"interest_status": "maybe"}, "interest_status"),
        ({"status": "completed"}, "status"),
        ({"custom_variables": None}, "custom_variables"),
        ({"custom_variables": {"bad-key": 1}}, "custom_variables.bad-key"),
    ):
        assert_error(await client.patch(url, headers=h, json=body), 400, field)
    assert (await client.get(url, headers=h)).json() == lead

    updated = (
        await client.patch(
            url,
            headers=h,
            json={
                "first_name": "Ana Maria",
                "title": "CTO",
                "custom_variables": {"b": "two"},
                "timezone": "Asia/Tokyo",
                "interest_status": "meeting_booked",
            },
        )
    ).json()
    assert (updated["first_name"], updated["title"], updated["custom_variables"]) == (
        "Ana Maria",
        "CTO",
        {"b": "two"},
    )
    assert (updated["timezone"], updated["timezone_source"]) == ("Asia/Tokyo", "explicit")
    assert updated["interest_status"] == "meeting_booked"
    # timezone null: inferred again (from the country here).
    again = (await client.patch(url, headers=h, json={"timezone": None})).json()
    assert (again["timezone"], again["timezone_source"]) == ("Europe/Paris", "country")
    # A new phone moves an inferred zone.
    phoned = (await client.patch(url, headers=h, json={"phone": "+12125550123"})).json()
    assert (phoned["timezone"], phoned["timezone_source"]) == ("America/New_York", "phone")
    async with database.transaction() as session:
        row = (await session.execute(select(Lead).where(Lead.id == lead["id"]))).scalar_one()
        assert row.interest_updated_at is not None

    assert (await client.patch(url, headers=h, json={"status": "paused"})).json()["status"] == "paused"
    assert (await client.patch(url, headers=h, json={"status": "active"})).json()["status"] == "active"


async def test_unsubscribed_interest_suppresses_the_address(client, workspace, campaign):
    h = workspace.headers()
    lead = await add(client, h, campaign["id"], email="stop@example.com")
    other = await create_campaign(client, h, [])
    twin = await add(client, h, other["id"], email="stop@example.com")
    updated = (
        await client.patch(f"/v1/leads/{lead['id']}", headers=h, json={"interest_status": "unsubscribed"})
    ).json()
    assert (updated["interest_status"], updated["status"]) == ("unsubscribed", "unsubscribed")
    entries = (await client.get("/v1/suppressions", headers=h)).json()["data"]
    assert [(e["type"], e["value"], e["reason"]) for e in entries] == [
        ("email", "stop@example.com", "unsubscribed")
    ]
    assert (await client.get(f"/v1/leads/{twin['id']}", headers=h)).json()["status"] == "suppressed"
    error = assert_error(
        await client.patch(f"/v1/leads/{twin['id']}", headers=h, json={"status": "active"}), 409, "status"
    )
    assert entries[0]["id"] in error["message"]
    assert_error(
        await client.patch(f"/v1/leads/{lead['id']}", headers=h, json={"status": "active"}), 409, "status"
    )


async def test_delete_suppresses_and_later_imports_are_marked(client, database, workspace, campaign):
    h = workspace.headers()
    lead = await add(client, h, campaign["id"], email="Gone@Example.com", first_name="Gone")
    second = await create_campaign(client, h, [])
    existing = await add(client, h, second["id"], email="gone@example.com")

    deleted = await client.delete(f"/v1/leads/{lead['id']}", headers=h)
    assert deleted.status_code == 200
    body = deleted.json()
    assert body["id"] == lead["id"] and body["deleted"] is True and body["suppression_id"].startswith("sup_")
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=h)).status_code == 404
    entry = (await client.get(f"/v1/suppressions/{body['suppression_id']}", headers=h)).json()
    assert (entry["type"], entry["value"], entry["reason"]) == ("email", "gone@example.com", "lead_deleted")
    # Leads with that address elsewhere stop being emailed.
    assert (await client.get(f"/v1/leads/{existing['id']}", headers=h)).json()["status"] == "suppressed"

    third = await create_campaign(client, h, [])
    bulk = (
        await client.post(
            "/v1/leads/bulk",
            headers=h,
            json={
                "campaign_id": third["id"],
                "leads": [{"email": "GONE@example.com"}, {"email": "fresh@example.com"}],
            },
        )
    ).json()
    assert [r["status"] for r in bulk["results"]] == ["suppressed", "created"]
    assert body["suppression_id"] in bulk["results"][0]["reason"]
    single = await client.post(
        "/v1/leads", headers=h, json={"campaign_id": third["id"], "email": "gone@example.com"}
    )
    assert "suppression list" in assert_error(single, 409, "email")["message"]
    fourth = await create_campaign(client, h, [])
    imported = await client.post(
        "/v1/leads/import",
        headers=h,
        data={"campaign_id": fourth["id"]},
        files={"file": ("x.csv", b"email,first_name\ngone@example.com,Gone\n", "text/csv")},
    )
    assert imported.json()["suppressed"] == 1 and imported.json()["results"][0]["status"] == "suppressed"
    # Deleting again is a 404; the suppression stays.
    assert (await client.delete(f"/v1/leads/{lead['id']}", headers=h)).status_code == 404
    assert (await counts(database))["suppressions"] == 1


async def test_tenancy(client, workspace, other_workspace, campaign):
    lead = await add(client, workspace.headers(), campaign["id"], email="ana@example.com")
    url = f"/v1/leads/{lead['id']}"
    for headers in (other_workspace.headers(), workspace.headers(live=False)):
        assert (await client.get(url, headers=headers)).status_code == 404
        assert (await client.patch(url, headers=headers, json={"first_name": "x"})).status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
        assert (await client.get("/v1/leads", headers=headers)).json()["data"] == []
        # Another tenant cannot add leads to this campaign either.
        response = await client.post(
            "/v1/leads", headers=headers, json={"campaign_id": campaign["id"], "email": "b@example.com"}
        )
        assert_error(response, 400, "campaign_id")
    assert (await client.get(url, headers=workspace.headers())).json()["first_name"] is None
