"""The caller as an `Annotated` dependency: authenticated, tier-checked and rate-limited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from imail.auth import scopes
from imail.auth.service import Caller, authenticate
from imail.db import SessionDep
from imail.errors import Forbidden, RateLimited
from imail.kit.ratelimit import RateLimiter

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def current_caller(request: Request, session: SessionDep) -> Caller:
    caller = await authenticate(session, request.headers.get("authorization"))
    limiter: RateLimiter = request.app.state.rate_limiter
    decision = await limiter.hit(caller.key_id, caller.rate_limit)
    # The request-context middleware copies these onto the response, whatever its status.
    request.state.rate_limit_headers = decision.headers()
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit of {caller.rate_limit.per_minute} requests/min (burst {caller.rate_limit.burst}) exceeded; "
            f"retry after {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def require_scope(family: str) -> Callable:
    """A router-level guard: GETs need `family:read`, everything else `family:write`."""

    async def guard(request: Request, caller: CallerDep) -> None:
        access = "read" if request.method in READ_METHODS else "write"
        if not scopes.allows(caller.scopes, family, access):
            raise Forbidden(f"This API key lacks the `{family}:{access}` scope", field=None)

    guard.__name__ = f"require_{family}_scope"
    return guard
