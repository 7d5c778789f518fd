"""A key sees its own workspace's rows in its own ledger, and nothing else."""

from __future__ import annotations

from imail.auth.repository import ApiKeyRepository
from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant
from tests.fixtures.factories import make_key


async def _listed_ids(client, headers) -> set[str]:
    response = await client.get("/v1/keys?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["data"]}


async def test_workspace_a_never_sees_workspace_b(client, database, workspace, other_workspace):
    for _ in range(3):
        await make_key(database, other_workspace.workspace_id)
    mine = await _listed_ids(client, workspace.headers())
    theirs = await _listed_ids(client, other_workspace.headers())
    assert mine and theirs and not (mine & theirs)
    assert len(theirs) == 4


async def test_test_key_never_sees_live_rows(client, database, workspace):
    live = await client.get("/v1/keys", headers=workspace.headers(live=True))
    test = await client.get("/v1/keys", headers=workspace.headers(live=False))
    assert all(row["livemode"] for row in live.json()["data"])
    assert [row["livemode"] for row in test.json()["data"]] == [False]
    live_id = live.json()["data"][0]["id"]
    revoke = await client.delete(f"/v1/keys/{live_id}", headers=workspace.headers(live=False))
    assert revoke.status_code == 404


async def test_keys_created_with_a_test_key_are_test_keys(client, workspace):
    created = await client.post("/v1/keys", headers=workspace.headers(live=False), json={"name": "ci"})
    assert created.status_code == 201
    assert created.json()["livemode"] is False
    assert created.json()["secret"].startswith("imk_test_")
    assert created.json()["id"] in await _listed_ids(client, workspace.headers(live=False))
    assert created.json()["id"] not in await _listed_ids(client, workspace.headers(live=True))


async def test_repository_filters_on_workspace_and_ledger(database, workspace, other_workspace):
    async with database.transaction() as session:
        rows = await ApiKeyRepository(session, Tenant(workspace.workspace_id, False)).page(
            PageParams(limit=100, after_id=None)
        )
    assert [(r.workspace_id, r.livemode) for r in rows] == [(workspace.workspace_id, False)]
