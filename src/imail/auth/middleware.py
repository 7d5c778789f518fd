"""Authenticate before reading a body: a request that carries one, to a route that needs an API key, has its key
checked (the same check and cache as the route's own, auth.deps) before a byte of the body is read, so a client
without a valid key cannot make the server receive and parse megabytes first. The route still authenticates (and
rate-limits) as always; this step only moves the refusal ahead of the body."""

from __future__ import annotations

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from imail.auth.deps import cached_caller, current_caller
from imail.auth.service import bearer_token
from imail.errors import ImailError


def _depends_on_caller(dependant: Dependant) -> bool:
    return any(d.call is current_caller or _depends_on_caller(d) for d in dependant.dependencies)


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() not in ("", "0"))


class AuthenticateBeforeBody:
    def __init__(self, app: ASGIApp):
        self.app = app
        self._needs_key: dict[APIRoute, bool] = {}

    def _route_needs_key(self, scope: Scope) -> bool:
        for route in scope["app"].router.routes:
            if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
                if route not in self._needs_key:
                    self._needs_key[route] = _depends_on_caller(route.dependant)
                return self._needs_key[route]
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            if _has_body(headers) and self._route_needs_key(scope):
                try:
                    await cached_caller(scope["app"].state, bearer_token(headers.get("authorization")))
                except ImailError as refused:  # 401, or 403 tier_gated
                    # The unread body makes the connection unusable for another request: close it after the answer.
                    refused.headers = {**refused.headers, "Connection": "close"}
                    raise
                except Exception:  # noqa: BLE001 - e.g. the database is down: the route's own check answers (503)
                    pass
        await self.app(scope, receive, send)
