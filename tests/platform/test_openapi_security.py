"""openapi.json documents each operation's security as the server enforces it: an operation documented as
needing a key answers 401 without one, and one documented as public never does."""

from __future__ import annotations

import re

from imail.openapi import authenticated_operations


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x_0000000000", path)


async def test_every_documented_operation_is_enforced_as_documented(app, client):
    document = (await client.get("/openapi.json")).json()
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            response = await client.request(method.upper(), _concrete(path))
            if operation["security"]:
                assert operation["security"] == [{"bearerAuth": []}]
                assert response.status_code == 401, (method, path, response.status_code)
            else:
                assert response.status_code != 401, (method, path, response.text)
            checked += 1
    assert checked == sum(len(ops) for ops in document["paths"].values()) > 40


async def test_public_routes_are_documented_without_security(client):
    document = (await client.get("/openapi.json")).json()
    for path in ("/oauth/callback", "/healthz", "/v1/status/full", "/v1/metrics/public"):
        assert document["paths"][path]["get"]["security"] == [], path
    assert document["paths"]["/v1/campaigns"]["get"]["security"] == [{"bearerAuth": []}]


def test_the_authenticated_set_is_read_off_the_routes(app):
    authenticated = authenticated_operations(app)
    assert ("/v1/keys", "post") in authenticated
    assert ("/oauth/callback", "get") not in authenticated
    assert ("/v1/status/full", "get") not in authenticated
