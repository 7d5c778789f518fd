"""The one place routers are mounted."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from imail.errors import ErrorBody
from imail.keys.router import router as keys_router
from imail.kit.version_gate import version_gate
from imail.status.router import health_router
from imail.status.router import router as status_router

ERROR_RESPONSES = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request or validation failed",
        401: "Missing or invalid API key",
        403: "Key valid but the workspace's tier or the key's scopes lack the feature",
        404: "Resource doesn't exist or isn't yours",
        409: "Conflict",
        429: "Rate limited; see Retry-After",
        500: "Our fault; send the request_id to support",
        503: "A backing service is unavailable; retry",
    }.items()
}
PUBLIC_ERROR_RESPONSES = {s: ERROR_RESPONSES[s] for s in (400, 500, 503)}


def build_v1() -> APIRouter:
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(version_gate)])
    v1.include_router(keys_router, responses=ERROR_RESPONSES)
    v1.include_router(status_router, responses=PUBLIC_ERROR_RESPONSES)
    return v1


def mount_routers(app: FastAPI) -> None:
    app.include_router(health_router)
    app.include_router(build_v1())
