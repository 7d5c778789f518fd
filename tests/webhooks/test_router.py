"""`/v1/webhooks`: create (secret once), URL and subscription checks, version pinning, tenancy, the log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from imail.kit import versions
from imail.main import create_app
from tests.conftest import make_settings
from tests.fixtures.factories import bearer, make_key
from tests.platform.test_errors import assert_error
from tests.webhooks.conftest import create_endpoint, emit

PUBLIC_URL = "https://93.184.216.34/hooks/imail"  # a public address literal: no DNS needed


@pytest.fixture
async def strict_client(database_url, database) -> AsyncIterator[httpx.AsyncClient]:
    """The API as a production server runs it: private webhook targets refused."""
    app = create_app(make_settings(database_url, webhooks_allow_private=False))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://imail.test") as http,
    ):
        yield http


async def test_create_returns_the_secret_once(client, workspace):
    response = await client.post(
        "/v1/webhooks",
        json={
            "url": "http://127.0.0.1:9/hook",
            "events": ["email.sent", "reply.received"],
            "description": " CRM ",
        },
        headers=workspace.headers(),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["id"].startswith("wh_")
    assert created["object"] == "webhook"
    assert created["events"] == ["email.sent", "reply.received"]
    assert created["description"] == "CRM"
    assert (created["status"], created["disabled_reason"], created["livemode"]) == ("enabled", None, True)
    assert created["api_version"] == versions.LATEST.isoformat()
    assert created["created_at"].endswith("Z")

    got = await client.get(f"/v1/webhooks/{created['id']}", headers=workspace.headers())
    listed = await client.get("/v1/webhooks", headers=workspace.headers())
    for response in (got, listed):
        assert response.status_code == 200
        assert secret not in response.text and "secret" not in response.text
    assert got.json() == {k: v for k, v in created.items() if k != "secret"}
    assert [w["id"] for w in listed.json()["data"]] == [created["id"]]
    enabled = await client.post(f"/v1/webhooks/{created['id']}/enable", headers=workspace.headers())
    assert "secret" not in enabled.text


async def test_each_endpoint_gets_its_own_secret(client, workspace):
    a = await create_endpoint(client, workspace.headers(), "http://127.0.0.1:9/a")
    b = await create_endpoint(client, workspace.headers(), "http://127.0.0.1:9/b")
    assert a["secret"] != b["secret"]


BAD_URLS = [
    ("ftp://example.com/hook", "https:// or http://"),
    ("example.com/hook", "https:// or http://"),
    ("https://user:pw@example.com/hook", "credentials"),
    ("https://token@example.com/hook", "credentials"),
    ("https:///hook", "no host"),
    ("https://exa mple.com/hook", "without spaces"),
    ("https://example.com:99999/hook", "not a valid URL"),
    ("https://example.com/" + "a" * 2100, "at most 2048"),
    ("", "https:// or http://"),
]


async def test_bad_urls_are_400_naming_the_field(client, workspace):
    for url, words in BAD_URLS:
        response = await client.post(
            "/v1/webhooks", json={"url": url, "events": ["*"]}, headers=workspace.headers()
        )
        body = assert_error(response, 400, "invalid_field", "url")
        assert words in body["error"]["message"], (url, body)
    assert (await client.get("/v1/webhooks", headers=workspace.headers())).json()["data"] == []


PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://api.localhost/hook",
    "https://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "https://172.16.5.4/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
    "https://metadata.google.internal/hook",
    "http://2130706433/hook",  # 127.0.0.1 written as one number
]


async def test_private_and_loopback_targets_are_refused(strict_client, workspace):
    for url in PRIVATE_URLS:
        response = await strict_client.post(
            "/v1/webhooks", json={"url": url, "events": ["*"]}, headers=workspace.headers()
        )
        message = assert_error(response, 400, "invalid_field", "url")["error"]["message"]
        assert "IMAIL_WEBHOOKS_ALLOW_PRIVATE" in message or "does not resolve" in message, (url, message)
    assert (await strict_client.get("/v1/webhooks", headers=workspace.headers())).json()["data"] == []


async def test_a_public_address_is_accepted_by_the_strict_server(strict_client, workspace):
    response = await strict_client.post(
        "/v1/webhooks", json={"url": PUBLIC_URL, "events": ["*"]}, headers=workspace.headers()
    )
    assert response.status_code == 201, response.text


async def test_an_unresolvable_host_is_refused(strict_client, workspace):
    response = await strict_client.post(
        "/v1/webhooks",
        json={"url": "https://no-such-host.invalid/hook", "events": ["*"]},
        headers=workspace.headers(),
    )
    assert "does not resolve" in assert_error(response, 400, "invalid_field", "url")["error"]["message"]


async def test_unknown_event_types_are_400(client, workspace):
    response = await client.post(
        "/v1/webhooks",
        json={"url": PUBLIC_URL, "events": ["email.sent", "email.exploded"]},
        headers=workspace.headers(),
    )
    body = assert_error(response, 400, "invalid_field", "events[1]")
    assert "email.exploded" in body["error"]["message"] and "reply.received" in body["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"url": PUBLIC_URL, "events": []}, "invalid_field", "events"),
        ({"url": PUBLIC_URL}, "missing_field", "events"),
        ({"events": ["*"]}, "missing_field", "url"),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_mine"}, "invalid_field", "secret"),
        ({"url": PUBLIC_URL, "events": "email.sent"}, "invalid_field", "events"),
    ],
)
async def test_malformed_bodies_are_400(client, workspace, payload, code, field):
    response = await client.post("/v1/webhooks", json=payload, headers=workspace.headers())
    assert_error(response, 400, code, field)


async def test_star_and_duplicates_are_normalised(client, workspace):
    star = await create_endpoint(client, workspace.headers(), PUBLIC_URL, ["email.sent", "*"])
    dupes = await create_endpoint(
        client, workspace.headers(), PUBLIC_URL, ["email.sent", "email.sent", "email.opened"]
    )
    assert star["events"] == ["*"]
    assert dupes["events"] == ["email.sent", "email.opened"]


@pytest.mark.parametrize(
    ("version", "event_type"),
    [
        ("2026-04-22", "email.bounced.soft"),
        ("2026-03-10", "warmup.threshold_paused"),
        ("2026-05-09", "email.bounced.soft"),
    ],
)
async def test_subscribing_to_newer_events_under_an_older_version_is_400(
    client, workspace, version, event_type
):
    response = await client.post(
        "/v1/webhooks",
        json={"url": PUBLIC_URL, "events": ["email.sent", event_type]},
        headers=workspace.headers(**{"Imail-Version": version}),
    )
    body = assert_error(response, 400, "invalid_field", "events[1]")
    assert "2026-05-10" in body["error"]["message"] and event_type in body["error"]["message"]


async def test_newer_events_can_be_subscribed_under_the_version_that_added_them(client, workspace):
    created = await create_endpoint(
        client,
        workspace.headers(**{"Imail-Version": "2026-05-10"}),
        PUBLIC_URL,
        ["email.bounced.soft", "warmup.threshold_paused"],
    )
    assert created["api_version"] == "2026-05-10"
    pinned = await create_endpoint(
        client, workspace.headers(**{"Imail-Version": "2026-04-30"}), PUBLIC_URL, ["*"]
    )
    assert pinned["api_version"] == "2026-04-22"  # the snapshot in force on that date


async def test_another_workspaces_endpoint_is_404_everywhere(client, workspace, other_workspace):
    theirs = await create_endpoint(client, other_workspace.headers(), PUBLIC_URL)
    for method, path in [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/enable"),
        ("GET", "/deliveries"),
        ("POST", "/test"),
    ]:
        response = await client.request(
            method, f"/v1/webhooks/{theirs['id']}{path}", headers=workspace.headers()
        )
        assert_error(response, 404, "not_found")
    assert (
        await client.get(f"/v1/webhooks/{theirs['id']}", headers=other_workspace.headers())
    ).status_code == 200
    assert_error(
        await client.get("/v1/webhooks/wh_01J0000000000000000000000", headers=workspace.headers()),
        404,
        "not_found",
    )


async def test_delete_is_final(client, workspace):
    created = await create_endpoint(client, workspace.headers(), PUBLIC_URL)
    assert (
        await client.delete(f"/v1/webhooks/{created['id']}", headers=workspace.headers())
    ).status_code == 200
    assert_error(
        await client.get(f"/v1/webhooks/{created['id']}", headers=workspace.headers()), 404, "not_found"
    )
    assert_error(
        await client.delete(f"/v1/webhooks/{created['id']}", headers=workspace.headers()), 404, "not_found"
    )


async def test_scopes_guard_the_webhooks_family(client, database, workspace):
    reader = await make_key(database, workspace.workspace_id, scopes=["webhooks:read"])
    outsider = await make_key(database, workspace.workspace_id, scopes=["campaigns:write"])
    assert (await client.get("/v1/webhooks", headers=bearer(reader))).status_code == 200
    assert_error(
        await client.post("/v1/webhooks", json={"url": PUBLIC_URL, "events": ["*"]}, headers=bearer(reader)),
        403,
        "forbidden",
    )
    assert_error(await client.get("/v1/webhooks", headers=bearer(outsider)), 403, "forbidden")
    assert_error(await client.get("/v1/webhooks"), 401, "unauthorized")


async def test_the_delivery_log_pages_and_filters(client, workspace, database):
    created = await create_endpoint(client, workspace.headers(), "http://127.0.0.1:9/hook")
    events = [await emit(database, workspace.workspace_id) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get(
                f"/v1/webhooks/{created['id']}/deliveries", params=params, headers=workspace.headers()
            )
        ).json()
        seen += [d["event_id"] for d in page["data"]]
        assert all(d["status"] == "pending" and d["attempts"] == 0 for d in page["data"])
        cursor = page["pagination"]["next_cursor"]
        if not page["pagination"]["has_more"]:
            break
    assert seen == [e.id for e in reversed(events)]
    failed = await client.get(
        f"/v1/webhooks/{created['id']}/deliveries", params={"status": "failed"}, headers=workspace.headers()
    )
    assert failed.json()["data"] == []
    bad = await client.get(
        f"/v1/webhooks/{created['id']}/deliveries", params={"status": "lost"}, headers=workspace.headers()
    )
    assert_error(bad, 400, "invalid_field", "status")


async def test_the_openapi_document_describes_every_delivery(client):
    from imail.events.types import EVENT_TYPES

    document = (await client.get("/openapi.json")).json()
    assert set(document["webhooks"]) == set(EVENT_TYPES)
    schemas = document["components"]["schemas"]
    for event_type, payload in EVENT_TYPES.items():
        operation = document["webhooks"][event_type]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        envelope = schemas[ref.rsplit("/", 1)[1]]
        assert envelope["properties"]["type"]["const"] == event_type
        assert set(envelope["required"]) == {"id", "type", "created_at", "livemode", "data"}
        assert envelope["properties"]["data"]["$ref"].endswith("/" + payload.__name__)
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert {"x-imail-signature", "webhook-signature", "webhook-timestamp", "webhook-id"} <= headers
        added = versions.event_introduced(event_type)
        newer = added is not None and added > versions.FIRST
        assert ("Added in API version" in operation["description"]) is newer
        if newer:
            assert added.isoformat() in operation["description"]
