"""Keys limited to scopes: read or write per resource family; a missing scope is 403."""

from __future__ import annotations

from imail.auth import scopes
from tests.fixtures.factories import bearer, make_key


def test_write_implies_read_and_none_means_everything():
    assert scopes.allows(None, "keys", "write")
    assert scopes.allows(["keys:write"], "keys", "read")
    assert not scopes.allows(["keys:read"], "keys", "write")
    assert not scopes.allows(["analytics:read"], "keys", "read")


async def test_a_read_only_key_reads_but_cannot_write(client, database, workspace):
    reader = await make_key(database, workspace.workspace_id, scopes=["keys:read"])
    assert (await client.get("/v1/keys", headers=bearer(reader))).status_code == 200
    denied = await client.post("/v1/keys", headers=bearer(reader), json={})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"
    assert "keys:write" in denied.json()["error"]["message"]


async def test_an_analytics_only_key_cannot_list_keys(client, database, workspace):
    analytics = await make_key(database, workspace.workspace_id, scopes=["analytics:read"])
    response = await client.get("/v1/keys", headers=bearer(analytics))
    assert response.status_code == 403


async def test_a_scoped_key_cannot_mint_a_broader_key(client, database, workspace):
    limited = await make_key(database, workspace.workspace_id, scopes=["keys:write", "analytics:read"])
    broader = await client.post("/v1/keys", headers=bearer(limited), json={})
    assert broader.status_code == 403 and broader.json()["error"]["field"] == "scopes"
    narrower = await client.post("/v1/keys", headers=bearer(limited), json={"scopes": ["analytics:read"]})
    assert narrower.status_code == 201 and narrower.json()["scopes"] == ["analytics:read"]
