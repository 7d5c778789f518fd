"""The OpenAPI 3.1 document: FastAPI's, with the security scheme and the version header described."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from imail.kit import versions

PUBLIC_PREFIXES = ("/healthz", "/v1/status", "/v1/metrics")


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        webhooks=app.webhooks.routes,
        servers=[{"url": "http://127.0.0.1:8000", "description": "make run"}],
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `imk_live_…` or `imk_test_…` (test mode, a separate ledger).",
    }
    version_header = {
        "name": versions.HEADER,
        "in": "header",
        "required": False,
        "description": "Pin to a dated snapshot: " + ", ".join(s.isoformat() for s in versions.SNAPSHOTS),
        "schema": {"type": "string", "format": "date"},
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if path.startswith("/v1/"):
                operation.setdefault("parameters", []).append(dict(version_header))
            if not path.startswith(PUBLIC_PREFIXES):
                operation["security"] = [{"bearerAuth": []}]
            if method == "post" and path.startswith("/v1/"):
                operation.setdefault("parameters", []).append(
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Retry-safe POST: the first response is kept 24 h and replayed for the same body.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    }
                )
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
