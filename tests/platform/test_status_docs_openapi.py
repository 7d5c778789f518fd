"""Liveness, component status, offline docs, and the committed OpenAPI document."""

from __future__ import annotations

import json

from imail.kit.responses import JSONBody  # noqa: F401  (import check: the JSON response class exists)


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_status_full_reports_database_and_redis(client):
    response = await client.get("/v1/status/full")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=30"
    body = response.json()
    assert body["components"]["database"]["status"] == "ok"
    assert body["components"]["redis"]["status"] == "disabled"
    assert body["status"] == "ok"


async def test_status_full_is_computed_once_per_30_seconds(app, client):
    for _ in range(20):
        assert (await client.get("/v1/status/full")).status_code == 200
    assert app.state.status_cache.computations == 1


async def test_status_full_with_real_redis(settings, database, redis_url):
    import httpx

    from imail.main import create_app

    application = create_app(settings.model_copy(update={"redis_url": redis_url}))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as http,
    ):
        body = (await http.get("/v1/status/full")).json()
    assert body["components"]["redis"]["status"] == "ok"


async def test_docs_are_served_without_a_cdn(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert (await client.get("/docs/assets/swagger-ui-bundle.js")).status_code == 200
    assert (await client.get("/docs/assets/swagger-ui.css")).status_code == 200


async def test_served_openapi_equals_the_committed_document(client, repo_root):
    served = (await client.get("/openapi.json")).json()
    committed = json.loads((repo_root / "openapi.json").read_text())
    assert served == committed, "openapi.json is stale: run `make openapi`"
    assert served["openapi"].startswith("3.1")


async def test_operation_ids_read_well(client):
    document = (await client.get("/openapi.json")).json()
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert (
            operation_id.isidentifier()
            and "_v1_" not in operation_id
            and not operation_id.endswith(("_get", "_post"))
        )
