"""Every status >= 400 answers the contract's body, with the request id of its X-Request-Id header."""

from __future__ import annotations

import pytest

from tests.fixtures.factories import bearer, make_key, make_workspace


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["doc"].endswith(f"/docs/errors/{code}")
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["request_id"].startswith("req_")
    if field is not None:
        assert body["error"]["field"] == field
    return body


async def test_missing_key_is_401(client):
    assert_error(await client.get("/v1/keys"), 401, "unauthorized")


@pytest.mark.parametrize(
    "header",
    [
        "Basic abc",
        "Bearer",
        "Bearer imk_live_short",
        "Bearer imk_live_" + "A" * 32,
        "Token imk_live_" + "A" * 32,
    ],
)
async def test_malformed_or_unknown_key_is_401(client, header):
    assert_error(await client.get("/v1/keys", headers={"Authorization": header}), 401, "unauthorized")


async def test_revoked_key_is_401(client, database, workspace):
    other = await make_key(database, workspace.workspace_id)
    listed = await client.get("/v1/keys", headers=bearer(other))
    own_id = next(k["id"] for k in listed.json()["data"] if k["redacted"].endswith(other[-4:]))
    assert (await client.delete(f"/v1/keys/{own_id}", headers=workspace.headers())).status_code == 200
    assert_error(await client.get("/v1/keys", headers=bearer(other)), 401, "unauthorized")


async def test_starter_tier_is_403_tier_gated(client, database):
    starter = await make_workspace(database, "starter", "Tiny")
    body = assert_error(await client.get("/v1/keys", headers=starter.headers()), 403, "tier_gated")
    assert "Surge" in body["error"]["message"]


async def test_unknown_route_is_404(client, workspace):
    assert_error(await client.get("/v1/nothing-here", headers=workspace.headers()), 404, "not_found")
    assert_error(await client.get("/nowhere"), 404, "not_found")


async def test_wrong_method_is_405(client, workspace):
    response = await client.put("/v1/keys", headers=workspace.headers())
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_bad_json_is_400_invalid_json(client, workspace):
    headers = workspace.headers(**{"Content-Type": "application/json"})
    assert_error(await client.post("/v1/keys", headers=headers, content=b"{nope"), 400, "invalid_json")
    assert_error(await client.post("/v1/keys", headers=headers, content=b"[1, 2]"), 400, "invalid_json")


async def test_form_body_gets_a_content_type_hint(client, workspace):
    headers = workspace.headers(**{"Content-Type": "application/x-www-form-urlencoded"})
    body = assert_error(
        await client.post("/v1/keys", headers=headers, content=b'{"name": "x"}'), 400, "invalid_json"
    )
    assert "application/json" in body["error"]["message"]


async def test_body_without_content_type_is_read_as_json(client, workspace):
    response = await client.post("/v1/keys", headers=workspace.headers(), content=b'{"name": "ci"}')
    assert response.status_code == 201, response.text


async def test_invalid_field_names_the_field(client, workspace):
    response = await client.post(
        "/v1/keys", headers=workspace.headers(), json={"scopes": ["campaigns:delete"]}
    )
    body = assert_error(response, 400, "invalid_field", "scopes")
    assert "campaigns:read" in body["error"]["message"]
    long_name = await client.post("/v1/keys", headers=workspace.headers(), json={"name": "x" * 121})
    assert_error(long_name, 400, "invalid_field", "name")


async def test_unknown_field_is_400(client, workspace):
    response = await client.post("/v1/keys", headers=workspace.headers(), json={"nmae": "typo"})
    assert_error(response, 400, "invalid_field", "nmae")


async def test_bad_query_parameter_is_400(client, workspace):
    assert_error(
        await client.get("/v1/keys?limit=0", headers=workspace.headers()), 400, "invalid_field", "limit"
    )
    assert_error(
        await client.get("/v1/keys?limit=abc", headers=workspace.headers()), 400, "invalid_field", "limit"
    )
    assert_error(
        await client.get("/v1/keys?cursor=xyz", headers=workspace.headers()), 400, "invalid_field", "cursor"
    )


async def test_rate_limited_is_429_with_retry_after(client, database):
    tight = await make_workspace(database, "apex", "Tight", per_minute=6, burst=2)
    statuses = [(await client.get("/v1/keys", headers=tight.headers())) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    assert_error(statuses[2], 429, "rate_limited")
    assert int(statuses[2].headers["retry-after"]) >= 1
    assert statuses[2].headers["x-ratelimit-remaining"] == "0"


async def test_oversized_body_is_413(client, workspace, app):
    limit = app.state.settings.max_body_bytes
    response = await client.post("/v1/keys", headers=workspace.headers(), content=b"{" + b" " * limit + b"}")
    assert_error(response, 413, "payload_too_large")


async def test_other_workspaces_key_is_404(client, workspace, other_workspace):
    theirs = (await client.get("/v1/keys", headers=other_workspace.headers())).json()["data"][0]["id"]
    assert_error(await client.delete(f"/v1/keys/{theirs}", headers=workspace.headers()), 404, "not_found")
    still = (await client.get("/v1/keys", headers=other_workspace.headers())).json()["data"][0]
    assert still["revoked_at"] is None


async def test_unexpected_exception_is_500_in_contract_shape(app, client, workspace):
    @app.get("/v1/_boom", include_in_schema=False)
    async def boom():
        raise RuntimeError("secret internals")

    response = await client.get("/v1/_boom")
    body = assert_error(response, 500, "internal_error")
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert body["error"]["message"]


async def test_every_response_has_a_request_id(client, workspace):
    for response in (await client.get("/healthz"), await client.get("/v1/keys", headers=workspace.headers())):
        assert response.headers["x-request-id"].startswith("req_")


def test_a_lost_database_connection_is_unavailable_whichever_layer_raises_it():
    import asyncpg
    from sqlalchemy.exc import DBAPIError, InvalidRequestError, ProgrammingError

    from imail.errors import database_unavailable

    def raised_from(outer: Exception, cause: BaseException) -> Exception:
        try:
            try:
                raise cause
            except BaseException as inner:
                raise outer from inner
        except Exception as exc:
            return exc

    lost = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    assert database_unavailable(lost)
    assert database_unavailable(
        raised_from(InvalidRequestError("Can't reconnect until invalid transaction is rolled back"), lost)
    )
    assert database_unavailable(raised_from(RuntimeError("wrapped"), ConnectionResetError()))
    assert database_unavailable(DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True))
    # A bug is not an outage: a plain failure, and a statement the server refused, stay 500s.
    assert not database_unavailable(ValueError("bug"))
    assert not database_unavailable(ProgrammingError("SELECT nope", {}, Exception("syntax error")))
