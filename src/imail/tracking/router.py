"""Tracking and unsubscribe: public on purpose (no Caller), authorised by the signed token in the path."""

from __future__ import annotations

import base64
import html
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from imail.db import SessionDep
from imail.errors import NotFound, RateLimited
from imail.kit import pages
from imail.kit.clock import utcnow
from imail.kit.middleware import is_head
from imail.kit.ratelimit import Limit
from imail.kit.signing import Signer
from imail.tracking import service
from imail.tracking_domains.hosts import OWNER_KEY


async def limit_by_address(request: Request) -> None:
    """The public routes are rate-limited per client address (IMAIL_TRACKING_RATE_LIMIT_*): 429 past it, the
    pixel included (what loads it, an image proxy or a mail client, retries or shows nothing)."""
    state = request.app.state
    settings = state.settings
    limit = Limit(settings.tracking_rate_limit_per_minute, settings.tracking_rate_limit_burst)
    address = request.client.host if request.client else "unknown"
    decision = await state.rate_limiter.hit(f"tracking:{address}", limit)
    request.state.rate_limit_headers = decision.headers()  # the tighter of the two buckets it is charged to
    if not decision.allowed:
        raise RateLimited(
            f"Too many requests from {address}; retry after {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )


router = APIRouter(include_in_schema=False, dependencies=[Depends(limit_by_address)])

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def host_owner(request: Request) -> str | None:
    """The workspace whose tracking domain this request came to (see tracking_domains.hosts), None on any
    other host."""
    return getattr(request.state, OWNER_KEY, None)


def signer(request: Request) -> Signer:
    state = request.app.state
    if getattr(state, "signer", None) is None:
        state.signer = Signer(state.settings.resolved_secret_key())
    return state.signer


STYLE = (
    "body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}"
    "button{font-size:1rem;padding:.6rem 1.2rem}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return pages.page(html.escape(title), body, STYLE, status, headers=NO_STORE)


@router.get("/t/o/{token}.gif")
async def track_open(
    token: str, request: Request, session: SessionDep, user_agent: Annotated[str, Header()] = ""
) -> Response:
    """The open pixel. Always the image (a bad token is simply not counted, nor is a HEAD)."""
    if is_head(request.scope):
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)
    try:
        await service.record_open(
            session,
            signer(request),
            token,
            user_agent,
            request.client.host if request.client else None,
            utcnow(),
            host_owner(request),
        )
    except NotFound:
        pass
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/t/c/{token}")
async def track_click(
    token: str, request: Request, session: SessionDep, user_agent: Annotated[str, Header()] = ""
) -> Response:
    """The click redirect; a HEAD (link checkers send them) is answered but not counted."""
    try:
        if is_head(request.scope):
            url = await service.click_target(session, signer(request), token, host_owner(request))
        else:
            url = await service.record_click(
                session, signer(request), token, user_agent, utcnow(), host_owner(request)
            )
    except NotFound:
        return _page("Link not valid", "<h1>This link is not valid</h1>", 404)
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


@router.get("/u/{token}")
async def unsubscribe_page(token: str, request: Request, session: SessionDep) -> Response:
    """A confirmation page: a GET never unsubscribes (mail scanners follow links)."""
    try:
        message = await service.unsubscribe_target(session, signer(request), token, host_owner(request))
    except NotFound:
        return _page("Link not valid", "<h1>This unsubscribe link is not valid</h1>", 404)
    return _page(
        "Unsubscribe",
        f"<h1>Unsubscribe</h1><p>Stop emails to <b>{html.escape(message.to_email)}</b>?</p>"
        f"<form method=post><button type=submit>Unsubscribe</button></form>",
    )


ONE_CLICK = re.compile(rb'List-Unsubscribe(=|"\s*\r?\n\r?\n\s*)One-Click')
ONE_CLICK_BODY_LIMIT = 4096


async def is_one_click(request: Request) -> bool:
    """Whether a POST is RFC 8058's one-click: a mail client posting `List-Unsubscribe=One-Click`,
    form-urlencoded or multipart/form-data (the confirmation page's button posts an empty form)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) >= ONE_CLICK_BODY_LIMIT:
            break
    return ONE_CLICK.search(body[:ONE_CLICK_BODY_LIMIT]) is not None


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request, session: SessionDep) -> Response:
    """The form's button, and RFC 8058 one-click (`List-Unsubscribe=One-Click`) from mail clients."""
    source = "one_click" if await is_one_click(request) else "link"
    try:
        message = await service.unsubscribe(
            session, signer(request), token, utcnow(), source, owner=host_owner(request)
        )
    except NotFound:
        return _page("Link not valid", "<h1>This unsubscribe link is not valid</h1>", 404)
    return _page(
        "Unsubscribed",
        f"<h1>You are unsubscribed</h1><p>{html.escape(message.to_email)} will get no more emails from "
        "us.</p>",
    )
