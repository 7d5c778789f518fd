"""`GET /tls/ask`: for a TLS-terminating proxy that issues certificates on demand (Caddy's `on_demand_tls
ask`): 200 for a host that may get one (a verified tracking domain, or the public host), 404 otherwise, so
nobody can make the proxy request certificates for names that merely point at it."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from imail.db import SessionDep
from imail.tracking_domains import service

router = APIRouter(include_in_schema=False)


@router.get("/tls/ask")
async def tls_ask(request: Request, session: SessionDep, domain: str = Query("", max_length=300)):
    host = domain.strip().lower().rstrip(".")
    if host and (
        host == service.public_host(request.app.state.settings) or await service.is_verified(session, host)
    ):
        return PlainTextResponse("ok")
    return PlainTextResponse("not a tracking domain of this server", status_code=404)
