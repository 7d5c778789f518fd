"""Lead tags: set in create, bulk, CSV import and PATCH; normalized; filtered (all of the tags); bulk add and
remove on a filter; bad input is a 400 that changes nothing; another workspace's leads are never touched."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from imail.models import LeadTag
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.outreach import assert_error, create_campaign


@pytest.fixture
async def campaign(client, workspace) -> dict:
    return await create_campaign(client, workspace.headers(), [])


async def add(client, headers, campaign_id: str, email: str, **fields) -> dict:
    response = await client.post(
        "/v1/leads", headers=headers, json={"campaign_id": campaign_id, "email": email, **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def emails(client, headers, query: str) -> list[str]:
    response = await client.get(f"/v1/leads?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(lead["email"] for lead in response.json()["data"])


async def tag_rows(database) -> int:
    async with database.transaction() as session:
        return (await session.execute(select(func.count()).select_from(LeadTag))).scalar_one()


async def test_tags_are_normalized_in_create_and_patch(client, workspace, campaign):
    h = workspace.headers()
    lead = await add(
        client, h, campaign["id"], "a@example.com", tags=[" VIP ", "vip", "Q3  Launch", "q3 launch"]
    )
    assert lead["tags"] == ["q3 launch", "vip"]
    got = await client.get(f"/v1/leads/{lead['id']}", headers=h)
    assert got.json()["tags"] == ["q3 launch", "vip"]
    patched = await client.patch(f"/v1/leads/{lead['id']}", headers=h, json={"tags": ["vip", "Hot"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == ["hot", "vip"]
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=h)).json()["tags"] == ["hot", "vip"]
    # Other fields leave the tags alone; [] clears them.
    kept = await client.patch(f"/v1/leads/{lead['id']}", headers=h, json={"first_name": "Ann"})
    assert kept.json()["tags"] == ["hot", "vip"]
    cleared = await client.patch(f"/v1/leads/{lead['id']}", headers=h, json={"tags": []})
    assert cleared.json()["tags"] == []
    untagged = await add(client, h, campaign["id"], "b@example.com")
    assert untagged["tags"] == []


@pytest.mark.parametrize(
    "tags",
    [
        ["x" * 65],
        [""],
        ["   "],
        ["a,b"],
        ["a;b"],
        ["bell\x07"],
        [12],
        "vip",
        [f"t{i}" for i in range(31)],
    ],
)
async def test_bad_tags_are_a_400_that_writes_nothing(client, workspace, campaign, database, tags):
    h = workspace.headers()
    response = await client.post(
        "/v1/leads", headers=h, json={"campaign_id": campaign["id"], "email": "x@example.com", "tags": tags}
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["field"].startswith("tags")
    lead = await add(client, h, campaign["id"], "ok@example.com", tags=["keep"])
    patched = await client.patch(f"/v1/leads/{lead['id']}", headers=h, json={"tags": tags})
    assert patched.status_code in (400, 422), patched.text
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=h)).json()["tags"] == ["keep"]
    assert await tag_rows(database) == 1
    null = await client.patch(f"/v1/leads/{lead['id']}", headers=h, json={"tags": None})
    assert_error(null, 400, "tags")


async def test_bulk_and_import_set_tags(client, workspace, campaign):
    h = workspace.headers()
    bulk = await client.post(
        "/v1/leads/bulk",
        headers=h,
        json={
            "campaign_id": campaign["id"],
            "leads": [
                {"email": "one@example.com", "tags": ["VIP", "eu"]},
                {"email": "two@example.com", "tags": ["bad,tag"]},
                {"email": "three@example.com"},
            ],
        },
    )
    assert bulk.status_code == 200, bulk.text
    statuses = [(r["status"], r["field"]) for r in bulk.json()["results"]]
    assert statuses == [("created", None), ("invalid", "tags"), ("created", None)]
    csv_text = 'email,tags\nfour@example.com,VIP; us\nfive@example.com,"eu,us"\nsix@example.com,\n'
    imported = await client.post(
        "/v1/leads/import",
        headers=h,
        data={"campaign_id": campaign["id"]},
        files={"file": ("leads.csv", csv_text.encode(), "text/csv")},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 3
    assert await emails(client, h, "tag=vip") == ["four@example.com", "one@example.com"]
    assert await emails(client, h, "tag=eu") == ["five@example.com", "one@example.com"]
    assert await emails(client, h, "tag=US&tag=EU") == ["five@example.com"]
    assert await emails(client, h, "tag=vip&tag=eu") == ["one@example.com"]
    assert await emails(client, h, "tag=nobody") == []
    one = (await client.get("/v1/leads?email=one@example.com", headers=h)).json()["data"][0]
    assert one["tags"] == ["eu", "vip"]
    assert_error(await client.get("/v1/leads?tag=a;b", headers=h), 400, "tags")


async def test_bulk_tag_change_on_a_filter(client, workspace, other_workspace, campaign, database):
    h = workspace.headers()
    second = await create_campaign(client, h, [])
    for i in range(3):
        await add(client, h, campaign["id"], f"c{i}@example.com", tags=["old"] if i else [])
    await add(client, h, second["id"], "d@example.com", tags=["old"])
    theirs = await create_campaign(client, other_workspace.headers(), [])
    await add(client, other_workspace.headers(), theirs["id"], "them@example.com", tags=["old"])

    change = await client.post(
        "/v1/leads/tags",
        headers=h,
        json={"filter": {"campaign_id": campaign["id"]}, "add": ["New", "old"], "remove": []},
    )
    assert change.status_code == 200, change.text
    assert change.json() == {"object": "lead_tag_change", "matched": 3, "added": 4, "removed": 0}
    assert await emails(client, h, "tag=new") == ["c0@example.com", "c1@example.com", "c2@example.com"]

    removal = await client.post(
        "/v1/leads/tags", headers=h, json={"filter": {"tags": ["OLD"]}, "remove": ["old", "new"]}
    )
    assert removal.json() == {"object": "lead_tag_change", "matched": 4, "added": 0, "removed": 7}
    assert await emails(client, h, "tag=old") == []
    # The other workspace's lead kept its tag.
    assert await emails(client, other_workspace.headers(), "tag=old") == ["them@example.com"]

    before = await tag_rows(database)
    for body, field in (
        ({"filter": {}}, "add"),
        ({"filter": {}, "add": ["a"], "remove": ["A"]}, "remove"),
        ({"filter": {"tags": ["a,b"]}, "add": ["x"]}, "filter.tags"),
        ({"filter": {"email": "not an address"}, "add": ["x"]}, "filter.email"),
        ({"filter": {}, "add": ["x" * 65]}, "add"),
        ({"add": ["x"]}, "filter"),
        ({"filter": {"bogus": 1}, "add": ["x"]}, "filter.bogus"),
    ):
        response = await client.post("/v1/leads/tags", headers=h, json=body)
        assert response.status_code in (400, 422), (body, response.text)
        assert response.json()["error"]["field"] == field, (body, response.text)
    assert await tag_rows(database) == before


async def test_tag_change_needs_leads_write(client, workspace, database, campaign):
    reader = await make_key(database, workspace.workspace_id, scopes=["leads:read"])
    response = await client.post("/v1/leads/tags", headers=bearer(reader), json={"filter": {}, "add": ["x"]})
    assert_error(response, 403, None)
    assert (await client.get("/v1/leads?tag=x", headers=bearer(reader))).status_code == 200
