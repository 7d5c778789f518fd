"""Routes that a pinned `Imail-Version` predates answer 404, decided from the version registry alone."""

from __future__ import annotations

from fastapi import Request

from imail.errors import NotFound
from imail.kit import versions


def route_template(request: Request) -> str:
    """The matched route's full path template ("/v1/leads/{lead_id}"). A route of a router included in another
    keeps its own relative path ("/leads/bulk"); FastAPI records the full one in the effective route
    context."""
    context = request.scope.get("fastapi", {}).get("effective_route_context")
    route = request.scope.get("route")
    return str(getattr(context, "path", None) or getattr(route, "path", request.url.path))


async def version_gate(request: Request) -> None:
    snapshot = request.state.api_version
    path = route_template(request)
    if not versions.endpoint_available(snapshot, request.method, path):
        raise NotFound(
            f"No route {request.method} {request.url.path} in API version {snapshot.isoformat()}; "
            f"it was added in a later version"
        )
