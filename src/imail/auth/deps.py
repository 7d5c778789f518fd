"""The caller as an `Annotated` dependency: authenticated, tier-checked and rate-limited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from imail.auth import keys, scopes
from imail.auth.cache import REVOCATIONS_KEY, CallerCache
from imail.auth.service import Caller, bearer_token, caller_for_token
from imail.db import Database
from imail.errors import Forbidden, RateLimited
from imail.kit.ratelimit import RateLimiter

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Request state: the key checked before the body was read (auth.middleware), which the route's dependency
# takes as is instead of parsing the header and looking the key up a second time.
AUTHENTICATED = "authenticated"


@dataclass(frozen=True, slots=True)
class Authenticated:
    token: str
    caller: Caller
    generation: (
        str | None
    )  # the cache's revocation generation when the key was checked (read before the lookup)


async def _checked(database: Database, token: str) -> Caller:
    async with database.read() as session:
        return await caller_for_token(session, token)


async def cached_caller(state: Any, token: str) -> Caller:
    """The key's caller, from the process's cache when it was checked in the last few seconds (see
    auth.cache)."""
    digest = keys.hash_key(token)
    callers: CallerCache = state.callers
    generation = callers.generation
    caller = callers.get(digest)
    if caller is None:
        caller = await _checked(state.database, token)
        callers.put(digest, caller, generation)
    return caller


async def authenticate(state: Any, authorization: str | None) -> Authenticated:
    """The one key check of a request: the Bearer header parsed and the key looked up (through the cache)."""
    token = bearer_token(authorization)
    generation = state.callers.generation  # read before the lookup, as cached_caller does
    return Authenticated(token, await cached_caller(state, token), generation)


async def current_caller(request: Request) -> Caller:
    """The authenticated, rate-limited caller (401, 403 tier_gated or 429 otherwise)."""
    state = request.app.state
    callers: CallerCache = state.callers
    authenticated: Authenticated | None = getattr(request.state, AUTHENTICATED, None)
    if authenticated is None:  # no body, or the check before it was left to the route (the database was down)
        authenticated = await authenticate(state, request.headers.get("authorization"))
    token, caller, generation = authenticated.token, authenticated.caller, authenticated.generation
    limiter: RateLimiter = state.rate_limiter
    decision = await limiter.hit(caller.key_id, caller.rate_limit, watch=REVOCATIONS_KEY)
    if decision.watched is not None and decision.watched != generation:
        # Some key was revoked since this caller was checked (or this process has not seen the counter yet):
        # check this one again before it gets anywhere.
        callers.observe(decision.watched)
        caller = await _checked(state.database, token)
        callers.put(keys.hash_key(token), caller, decision.watched)
    # The request-context middleware copies these onto the response, whatever its status.
    request.state.rate_limit_headers = decision.headers()
    request.state.caller = caller  # for what runs after the endpoint (deprecation use is counted per key)
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit of {caller.rate_limit.per_minute} requests/min (burst {caller.rate_limit.burst}) "
            "exceeded; "
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
