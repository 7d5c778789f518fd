"""Every HTML page we serve carries a strict Content-Security-Policy (nothing loads but what the page names,
no framing, forms post back to us only), X-Frame-Options, nosniff and a Referrer-Policy, and still renders
under it (Swagger UI included, in headless Chromium). HEAD on a GET route answers as the GET would, without
the body."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import subprocess

import pytest

from imail.db import Database
from tests.analytics.test_status_page import chromium
from tests.conftest import make_settings
from tests.fixtures.api_servers import api_servers
from tests.fixtures.factories import bearer, make_workspace
from tests.fixtures.outreach import create_campaign, make_inbox


def policy_of(response) -> dict[str, set[str]]:
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        directives[name] = set(sources)
    return directives


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def assert_strict_page(response) -> dict[str, set[str]]:
    assert response.headers["content-type"].startswith("text/html"), response.headers
    policy = policy_of(response)
    assert policy["default-src"] == {"'none'"} and policy["frame-ancestors"] == {"'none'"}
    assert policy["base-uri"] == {"'none'"} and policy["form-action"] == {"'self'"}
    for directive, sources in policy.items():
        assert not sources & {"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"}, (
            directive,
            sources,
        )
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    # Each inline block the page has is allowed by its hash (or it would not apply), and nothing else is
    # inline.
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        for block in re.findall(rf"<{tag}>(.*?)</{tag}>", response.text, re.DOTALL):
            assert sha256_source(block) in policy.get(directive, set()), (tag, block[:80])
    assert not re.search(r"\sstyle\s*=|\son\w+\s*=", response.text), "inline style or event attribute"
    return policy


async def test_unsubscribe_and_tracking_pages_are_strict(client):
    for method, path in (("GET", "/u/forged"), ("POST", "/u/forged"), ("GET", "/t/c/forged")):
        response = await client.request(method, path)
        assert response.status_code == 404, response.text
        policy = assert_strict_page(response)
        assert "style-src" in policy  # the page's own stylesheet, by hash


async def test_status_page_is_strict(client, database, workspace):
    await make_inbox(database, workspace.workspace_id)
    response = await client.get("/status")
    assert response.status_code == 200
    assert_strict_page(response)
    assert 'class="badge ok"' in response.text


async def test_docs_page_is_strict_and_json_is_not_sniffed(client, workspace):
    response = await client.get("/docs")
    assert response.status_code == 200
    policy = assert_strict_page(response)
    assert "'self'" in policy["script-src"] and policy["connect-src"] == {"'self'"}
    api = await client.get("/v1/campaigns", headers=workspace.headers())
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers  # JSON is not a document


async def test_head_answers_every_get_route_without_a_body(client, database, workspace):
    inbox = await make_inbox(database, workspace.workspace_id)
    campaign = await create_campaign(client, workspace.headers(), [inbox])
    cases = [
        ("/healthz", {}),
        ("/openapi.json", {}),
        ("/status", {}),
        ("/docs", {}),
        ("/v1/campaigns", workspace.headers()),
        (f"/v1/campaigns/{campaign['id']}", workspace.headers()),
        ("/v1/campaigns", {}),  # unauthenticated: the same 401, no body
        ("/v1/campaigns/cmp_missing", workspace.headers()),  # 404
        ("/t/o/forged.gif", {}),
    ]
    for path, headers in cases:
        get = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert head.status_code == get.status_code and head.status_code != 405, (path, head.status_code)
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
        if (
            "content-length" in get.headers and path != "/v1/campaigns"
        ):  # (the list carries a request-time field)
            assert head.headers["content-length"] == get.headers["content-length"], path
        assert head.headers["x-request-id"].startswith("req_")
    # A route without a GET still refuses HEAD.
    assert (
        await client.head(f"/v1/campaigns/{campaign['id']}/pause", headers=workspace.headers())
    ).status_code == 405


@pytest.mark.slow
async def test_swagger_ui_still_works_under_its_policy(database_url, database, tmp_path):
    """A real `imail serve` and headless Chromium: the UI's scripts run and read /openapi.json, and the
    browser reports no policy violation."""
    binary = chromium()
    settings = make_settings(database_url)
    db = Database(settings)
    try:
        await make_workspace(db, "surge", "Docs")
    finally:
        await db.dispose()
    with api_servers(1, {"IMAIL_DATABASE_URL": database_url}) as [server]:
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            "--dump-dom",
            f"{server.base_url}/docs",
        ]
        done = await asyncio.to_thread(
            subprocess.run, command, check=False, capture_output=True, text=True, timeout=120
        )
    dom = done.stdout
    assert 'class="swagger-ui"' in dom, done.stderr[-3000:]  # the bundle and the inline start-up script ran
    # …and fetched /openapi.json: it either draws the operations or, as Swagger UI 4 does with an OpenAPI 3.1
    # document, says which version it found, but never that it could not load the definition.
    assert "opblock" in dom or "version-pragma" in dom, dom[-2000:]
    assert "Failed to load API definition" not in dom
    assert "Content Security Policy" not in done.stderr, done.stderr[-3000:]  # Chromium logs each violation


async def test_head_on_a_real_server(database_url, database):
    """Through uvicorn too (it knows HEAD has no body): the GET's headers, nothing after them."""
    keys = await make_workspace(database, "surge", "Head")
    with api_servers(1, {"IMAIL_DATABASE_URL": database_url}) as [server]:
        import httpx

        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            for path, headers in (("/openapi.json", {}), ("/v1/campaigns", bearer(keys.live_key))):
                head = await http.head(path, headers=headers)
                assert head.status_code == 200 and head.content == b"", path
                assert int(head.headers["content-length"]) > 0
