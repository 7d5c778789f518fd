"""`X-RateLimit-*` on every response, as the reference promises: per key for authenticated requests, per
client address for the rest (public endpoints, tracking links, 401s, unknown routes), which is also a limit on
them."""

from __future__ import annotations

import httpx
import pytest

from imail.main import create_app
from tests.conftest import make_settings

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def assert_rate_headers(response: httpx.Response) -> None:
    for name in (*RATE_HEADERS, "x-request-id", "imail-version"):
        assert name in response.headers, (response.request.url, response.status_code, name)
        if name.startswith("x-ratelimit"):
            assert response.headers[name].isdigit()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/healthz", 200),
        ("/v1/status/full", 200),
        ("/v1/metrics/public", 200),
        ("/v1/changelog", 200),
        ("/changelog", 200),
        ("/openapi.json", 200),
        ("/v1/campaigns", 401),
        ("/v1/no-such-route", 404),
        ("/t/o/not-a-token.gif", 200),  # a pixel answers its image whatever the token
    ],
)
async def test_unauthenticated_responses_carry_rate_limit_headers(client, path, status):
    response = await client.get(path)
    assert response.status_code == status, response.text
    assert_rate_headers(response)


async def test_a_bad_key_and_an_unknown_route_with_a_key_carry_them_too(client, workspace):
    bad = await client.get("/v1/campaigns", headers={"Authorization": "Bearer imk_live_" + "X" * 32})
    assert bad.status_code == 401
    assert_rate_headers(bad)
    unknown = await client.get("/v1/no-such-route", headers=workspace.headers())
    assert unknown.status_code == 404
    assert_rate_headers(unknown)
    wrong_method = await client.put("/v1/campaigns", headers=workspace.headers())
    assert wrong_method.status_code == 405
    assert_rate_headers(wrong_method)


async def test_authenticated_responses_count_against_the_key_not_the_address(client, workspace):
    public = await client.get("/healthz")
    keyed = await client.get("/v1/campaigns", headers=workspace.headers())
    assert keyed.status_code == 200
    assert keyed.headers["x-ratelimit-limit"] == "240"  # surge's burst
    assert public.headers["x-ratelimit-limit"] == "2400"  # the per-address default


@pytest.fixture
async def tight(database_url, database):
    settings = make_settings(database_url, public_rate_limit_per_minute=1, public_rate_limit_burst=3)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def _client(application, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://imail.test")


async def test_public_endpoints_are_limited_per_client_address(tight, workspace):
    async with _client(tight, "203.0.113.7") as first, _client(tight, "203.0.113.8") as second:
        answers = [await first.get("/v1/status/full") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        limited = await first.get("/v1/metrics/public")
        assert limited.status_code == 429
        body = limited.json()
        assert (
            body["error"]["code"] == "rate_limited" and body["request_id"] == limited.headers["x-request-id"]
        )
        assert int(limited.headers["retry-after"]) >= 1
        assert_rate_headers(limited)
        # Another address has its own bucket; a key has its own, whatever the address.
        assert (await second.get("/v1/status/full")).status_code == 200
        assert (await first.get("/v1/campaigns", headers=workspace.headers())).status_code == 200


async def test_failed_logins_spend_the_address_bucket(tight):
    async with _client(tight, "198.51.100.9") as guesser:
        codes = [
            (
                await guesser.get("/v1/campaigns", headers={"Authorization": f"Bearer imk_live_{n:032d}"})
            ).status_code
            for n in range(3)
        ]
        assert codes == [401, 401, 401]
        assert (await guesser.get("/healthz")).status_code == 429


async def test_openapi_declares_every_response_header(client):
    document = (await client.get("/openapi.json")).json()
    assert set(document["components"]["headers"]) >= {
        "X-Request-Id",
        "Imail-Version",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
        "Idempotent-Replayed",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "429" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                declared = set(response.get("headers", {}))
                assert {
                    "X-Request-Id",
                    "Imail-Version",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                } <= declared
                assert ("Retry-After" in declared) is (status in ("429", "503")), (method, path, status)
                if method == "post" and path.startswith("/v1/") and status.startswith("2"):
                    assert "Idempotent-Replayed" in declared


def test_in_process_buckets_keyed_by_address_do_not_grow_without_bound(monkeypatch):
    from imail.kit.ratelimit import Limit, LocalBuckets

    buckets = LocalBuckets()
    monkeypatch.setattr(LocalBuckets, "SWEEP_AT", 100)
    fast = Limit(per_minute=60_000, burst=1)  # refills in 1 ms: full again by the next hit
    ticks = iter(range(10**6))
    monkeypatch.setattr("imail.kit.ratelimit.time.monotonic", lambda: next(ticks) * 0.01)  # 10 ms per hit
    for n in range(1000):
        assert buckets.hit(f"addr:10.0.{n // 256}.{n % 256}", fast).allowed
    assert len(buckets) <= 100
    # A bucket still draining is kept: its next request is refused as before the sweep.
    slow = Limit(per_minute=1, burst=1)
    assert buckets.hit("addr:192.0.2.1", slow).allowed
    for n in range(300):
        buckets.hit(f"addr:172.16.{n // 256}.{n % 256}", fast)
    assert not buckets.hit("addr:192.0.2.1", slow).allowed
