"""Keyset pagination: stable while rows are inserted, opaque cursors, bounded limits."""

from __future__ import annotations

import pytest

from imail.errors import InvalidField
from imail.kit.pagination import decode_cursor, encode_cursor
from tests.fixtures.factories import make_key


async def test_walking_every_page_while_inserting_returns_each_old_row_once(client, database, workspace):
    for _ in range(23):
        await make_key(database, workspace.workspace_id)
    before = {
        row["id"]
        for row in (await client.get("/v1/keys?limit=100", headers=workspace.headers())).json()["data"]
    }
    assert len(before) == 24

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/v1/keys?limit=5" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=workspace.headers())).json()
        seen.extend(row["id"] for row in page["data"])
        pages += 1
        # Rows added mid-walk must neither repeat nor push old rows out of the walk.
        await make_key(database, workspace.workspace_id)
        await make_key(database, workspace.workspace_id)
        if not page["pagination"]["has_more"]:
            assert page["pagination"]["next_cursor"] is None
            break
        cursor = page["pagination"]["next_cursor"]
        assert cursor.startswith("cur_")
    assert pages == 5
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    assert seen == sorted(seen, reverse=True)


async def test_limit_default_and_bounds(client, database, workspace):
    for _ in range(30):
        await make_key(database, workspace.workspace_id)
    default = (await client.get("/v1/keys", headers=workspace.headers())).json()
    assert len(default["data"]) == 25 and default["pagination"]["has_more"] is True
    full = (await client.get("/v1/keys?limit=100", headers=workspace.headers())).json()
    assert len(full["data"]) == 31 and full["pagination"] == {"next_cursor": None, "has_more": False}
    for bad in ("0", "101", "-1", "2.5"):
        response = await client.get(f"/v1/keys?limit={bad}", headers=workspace.headers())
        assert response.status_code == 400 and response.json()["error"]["field"] == "limit"


def test_cursor_round_trip_and_rejects_forgeries():
    cursor = encode_cursor("key_01HZ8K7XQ9VFRSGT3W2YBNMPDL")
    assert cursor.startswith("cur_")
    assert decode_cursor(cursor) == "key_01HZ8K7XQ9VFRSGT3W2YBNMPDL"
    for bad in ("xyz", "cur_", "cur_!!!", "cur_" + "a" * 10, encode_cursor("nonsense")):
        with pytest.raises(InvalidField) as raised:
            decode_cursor(bad)
        assert raised.value.field == "cursor"
