"""`/v1/suppressions`: addresses and whole domains, per workspace and ledger, and their effect on leads."""

from __future__ import annotations

from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, counts, create_campaign


async def lead(client, headers, campaign_id: str, email: str) -> dict:
    response = await client.post(
        "/v1/leads", headers=headers, json={"campaign_id": campaign_id, "email": email}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def status_of(client, headers, lead_id: str) -> str:
    return (await client.get(f"/v1/leads/{lead_id}", headers=headers)).json()["status"]


async def test_address_entries(client, workspace):
    h = workspace.headers()
    created = await client.post("/v1/suppressions", headers=h, json={"email": "  Ana@Example.COM "})
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["id"].startswith("sup_") and entry["object"] == "suppression"
    assert (entry["type"], entry["value"], entry["reason"], entry["livemode"]) == (
        "email",
        "ana@example.com",
        "manual",
        True,
    )
    assert (await client.get(f"/v1/suppressions/{entry['id']}", headers=h)).json() == entry
    again = await client.post("/v1/suppressions", headers=h, json={"email": "ana@example.com"})
    assert entry["id"] in assert_error(again, 409, "email", "conflict")["message"]

    domain = (await client.post("/v1/suppressions", headers=h, json={"domain": "@Rival.Example"})).json()
    assert (domain["type"], domain["value"]) == ("domain", "rival.example")
    listed = (await client.get("/v1/suppressions", headers=h)).json()
    assert [e["id"] for e in listed["data"]] == [domain["id"], entry["id"]]
    assert [e["id"] for e in (await client.get("/v1/suppressions?type=email", headers=h)).json()["data"]] == [
        entry["id"]
    ]
    assert [
        e["id"]
        for e in (await client.get("/v1/suppressions?value=ANA@example.com", headers=h)).json()["data"]
    ] == [entry["id"]]
    assert (await client.get("/v1/suppressions?reason=lead_deleted", headers=h)).json()["data"] == []
    page = (await client.get("/v1/suppressions?limit=1", headers=h)).json()
    assert page["pagination"]["has_more"] is True and len(page["data"]) == 1
    assert_error(await client.get("/v1/suppressions?type=phone", headers=h), 400, "type")

    removed = await client.delete(f"/v1/suppressions/{entry['id']}", headers=h)
    assert removed.status_code == 200 and removed.json()["id"] == entry["id"]
    assert (await client.get(f"/v1/suppressions/{entry['id']}", headers=h)).status_code == 404
    assert (await client.delete(f"/v1/suppressions/{entry['id']}", headers=h)).status_code == 404


async def test_invalid_entries_are_400_and_write_nothing(client, database, workspace):
    cases = [
        ({}, "email", "missing_field"),
        ({"email": "a@example.com", "domain": "example.com"}, "domain", "invalid_field"),
        ({"email": "not an address"}, "email", "invalid_field"),
        ({"domain": "ana@example.com"}, "domain", "invalid_field"),
        ({"domain": "no spaces.com"}, "domain", "invalid_field"),
        ({"domain": ""}, "domain", "invalid_field"),
        ({"value": "a@example.com"}, "value", "invalid_field"),
    ]
    before = await counts(database)
    for body, field, code in cases:
        assert_error(
            await client.post("/v1/suppressions", headers=workspace.headers(), json=body),
            400,
            field,
            code,
            case=body,
        )
    assert await counts(database) == before


async def test_domain_entries_hold_back_every_address_at_that_domain(client, workspace):
    h = workspace.headers()
    first = await create_campaign(client, h, [])
    second = await create_campaign(client, h, [])
    at_domain = await lead(client, h, first["id"], "ceo@rival.example")
    paused = await lead(client, h, second["id"], "cto@rival.example")
    await client.patch(f"/v1/leads/{paused['id']}", headers=h, json={"status": "paused"})
    subdomain = await lead(client, h, first["id"], "ops@eu.rival.example")
    elsewhere = await lead(client, h, first["id"], "ceo@friend.example")

    entry = (await client.post("/v1/suppressions", headers=h, json={"domain": "rival.example"})).json()
    assert await status_of(client, h, at_domain["id"]) == "suppressed"
    assert await status_of(client, h, paused["id"]) == "suppressed"
    assert await status_of(client, h, subdomain["id"]) == "active"  # exact domain only
    assert await status_of(client, h, elsewhere["id"]) == "active"
    bulk = (
        await client.post(
            "/v1/leads/bulk",
            headers=h,
            json={
                "campaign_id": second["id"],
                "leads": [{"email": "new@rival.example"}, {"email": "new@eu.rival.example"}],
            },
        )
    ).json()
    assert [r["status"] for r in bulk["results"]] == ["suppressed", "created"]
    assert (
        "domain rival.example" in bulk["results"][0]["reason"] and entry["id"] in bulk["results"][0]["reason"]
    )

    # An address entry for one of them too: removing the domain entry frees only the others.
    await client.post("/v1/suppressions", headers=h, json={"email": "ceo@rival.example"})
    assert (await client.delete(f"/v1/suppressions/{entry['id']}", headers=h)).status_code == 200
    assert await status_of(client, h, at_domain["id"]) == "suppressed"
    assert await status_of(client, h, paused["id"]) == "active"
    added = (
        await client.post(
            "/v1/leads/bulk",
            headers=h,
            json={"campaign_id": second["id"], "leads": [{"email": "new@rival.example"}]},
        )
    ).json()
    assert added["created"] == 1


async def test_entries_are_per_ledger_and_per_workspace(client, workspace, other_workspace):
    live, test = workspace.headers(), workspace.headers(live=False)
    test_entry = (
        await client.post("/v1/suppressions", headers=test, json={"email": "ana@example.com"})
    ).json()
    assert test_entry["livemode"] is False
    assert (await client.get("/v1/suppressions", headers=live)).json()["data"] == []
    assert (await client.get(f"/v1/suppressions/{test_entry['id']}", headers=live)).status_code == 404
    assert (
        await client.delete(f"/v1/suppressions/{test_entry['id']}", headers=other_workspace.headers())
    ).status_code == 404
    # A test-mode entry never holds back a live lead, nor another workspace's.
    campaign = await create_campaign(client, live, [])
    assert (await lead(client, live, campaign["id"], "ana@example.com"))["status"] == "active"
    theirs = await create_campaign(client, other_workspace.headers(), [])
    assert (await lead(client, other_workspace.headers(), theirs["id"], "ana@example.com"))[
        "status"
    ] == "active"
    test_campaign = await create_campaign(client, test, [])
    response = await client.post(
        "/v1/leads", headers=test, json={"campaign_id": test_campaign["id"], "email": "ana@example.com"}
    )
    assert_error(response, 409, "email")
    # Suppressing in live marks the live lead, not the other workspace's.
    await client.post("/v1/suppressions", headers=live, json={"domain": "example.com"})
    other_leads = (await client.get("/v1/leads", headers=other_workspace.headers())).json()["data"]
    assert [row["status"] for row in other_leads] == ["active"]


async def test_scopes(client, database, workspace):
    reader = bearer(await make_key(database, workspace.workspace_id, scopes=["suppressions:read"]))
    assert (await client.get("/v1/suppressions", headers=reader)).status_code == 200
    assert (
        await client.post("/v1/suppressions", headers=reader, json={"email": "a@example.com"})
    ).status_code == 403
    leads_only = bearer(await make_key(database, workspace.workspace_id, scopes=["leads:write"]))
    assert (await client.get("/v1/suppressions", headers=leads_only)).status_code == 403
