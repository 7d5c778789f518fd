"""Authenticate before reading a body: a request that carries one to the API (a POST, PUT, PATCH or DELETE
under `/v1/`, every one of which needs a key) has its key checked, with the same check and cache as the
route's own (auth.deps), before a byte of the body is read. A client without a valid key cannot make the
server receive and parse megabytes first. The route's dependency rate-limits as always and takes the caller
checked here (request state `authenticated`), so the key is parsed and looked up once per request; this only
moves the refusal ahead of the body. The public routes (tracking, unsubscribe, OAuth callback) live outside
`/v1/`."""

from __future__ import annotations

import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from imail.auth.deps import AUTHENTICATED, authenticate
from imail.errors import ImailError

log = structlog.get_logger("imail.auth")

API_PREFIX = "/v1/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() not in ("", "0"))


class AuthenticateBeforeBody:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in BODY_METHODS
            and scope["path"].startswith(API_PREFIX)
        ):
            headers = Headers(scope=scope)
            if _has_body(headers):
                try:
                    checked = await authenticate(scope["app"].state, headers.get("authorization"))
                    # The route's own dependency (auth.deps.current_caller) takes this check as is.
                    scope.setdefault("state", {})[AUTHENTICATED] = checked
                except ImailError as refused:  # 401, or 403 tier_gated
                    # The unread body leaves the connection unusable for another request: close it after the
                    # answer.
                    refused.headers = {**refused.headers, "Connection": "close"}
                    raise
                except Exception as exc:  # noqa: BLE001 - the database is down, say: the route's own check answers (503)
                    log.debug("key check before the body left to the route", error=str(exc)[:200])
        await self.app(scope, receive, send)
