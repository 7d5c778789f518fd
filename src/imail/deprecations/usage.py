"""A request that uses something deprecated: `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a `Link` to the
changelog on its response, and a count of the use against the caller's key (the monthly warnings read it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

import structlog
from fastapi import Request

from imail.deprecations.repository import DeprecationRepository
from imail.kit import versions
from imail.kit.clock import utcnow
from imail.kit.version_gate import route_template
from imail.kit.versions.base import Deprecation

log = structlog.get_logger("imail.deprecations")

_STATE = "deprecations_used"


async def _sent_fields(request: Request) -> set[str]:
    """Top-level names the request sent: query parameters and, for a JSON body, its keys."""
    names = set(request.query_params.keys())
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        if isinstance(body, dict):
            names.update(body)
    return names


def note_used(request: Request, deprecations: Sequence[Deprecation]) -> None:
    """Mark deprecations this request used (a router calls it for what only it can see, e.g. event types)."""
    used: list[Deprecation] = getattr(request.state, _STATE, None) or []
    used.extend(d for d in deprecations if d not in used)
    setattr(request.state, _STATE, used)
    request.state.deprecation_headers = response_headers(used, request.app.state.settings.public_url)


def response_headers(used: Sequence[Deprecation], public_url: str) -> dict[str, str]:
    if not used:
        return {}
    deprecated_on = min(d.deprecated_on for d in used)
    sunset = min(d.sunset for d in used)
    since = datetime(deprecated_on.year, deprecated_on.month, deprecated_on.day, tzinfo=UTC)
    ends = datetime(sunset.year, sunset.month, sunset.day, tzinfo=UTC)
    changelog = f"{public_url.rstrip('/')}/changelog#{deprecated_on.isoformat()}"
    return {
        "Deprecation": f"@{int(since.timestamp())}",
        "Sunset": format_datetime(ends, usegmt=True),
        "Link": f'<{changelog}>; rel="deprecation"; type="text/html", <{changelog}>; rel="sunset"; '
        'type="text/html"',
    }


async def track_deprecations(request: Request) -> AsyncIterator[None]:
    """A `/v1` router dependency: finds the route's and its fields' deprecations this request uses, and once
    the endpoint has run, counts every use (those routers noted too) against the caller's key."""
    candidates = versions.registry().route_deprecations(request.method, route_template(request))
    if candidates:
        fields = await _sent_fields(request) if any(d.kind == "field" for d in candidates) else set()
        note_used(request, [d for d in candidates if d.kind == "route" or d.field_name in fields])
    yield
    used: list[Deprecation] = getattr(request.state, _STATE, None) or []
    caller = getattr(request.state, "caller", None)
    if not used or caller is None:
        return
    try:
        async with request.app.state.database.transaction() as session:
            await DeprecationRepository(session).record_use(
                caller.workspace_id, caller.key_id, [d.target for d in used], utcnow()
            )
    except Exception:
        # Counting a use must never fail the request that made it: the headers already told the caller.
        log.warning("deprecation use not recorded", exc_info=True, targets=[d.target for d in used])
