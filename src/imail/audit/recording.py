"""Recording API changes: one dependency on every `/v1` route, plus a wrapper around write endpoints that
hands it what the endpoint answered (for the id of an object just created).

The dependency holds the request's session, so it is entered before the route's own use of it and left after:
the entry is added after the endpoint has returned and its response has been built, and before the session
commits (`db.request_session`, the one commit site). A request that raises (any 4xx or 5xx) leaves by the
exception, past the recording, and its transaction rolls back: a failed change leaves no entry. Reads (GET,
HEAD) are never recorded, and nor are requests without an API key (there is nobody to name)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response, StreamingResponse

from imail.audit import service
from imail.db import SessionDep
from imail.kit.request_id import current_request_id
from imail.kit.version_gate import route_template

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_PARSED_BODY = 64 * 1024  # a Response answered as built: its id is read from bodies up to this size
_WRAPPED = "__imail_audit_wrapped__"

# The current write request's result holder: the endpoint wrapper appends what the endpoint returned.
_results: ContextVar[list[Any] | None] = ContextVar("imail_audit_results", default=None)


def capture_results(router: APIRouter) -> None:
    """Wrap the router's write endpoints so that the recording dependency sees what they return. Done before
    the router is included (FastAPI builds the included routes from `route.endpoint`); a router is wrapped
    once."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or not (set(route.methods or ()) & WRITE_METHODS):
            continue
        if getattr(route.endpoint, _WRAPPED, False):
            continue
        route.endpoint = _capturing(route.endpoint)


def _capturing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps the signature (FastAPI reads the parameters through __wrapped__) and the docs.
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return _keep(await endpoint(*args, **kwargs))

    else:

        @functools.wraps(endpoint)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return _keep(endpoint(*args, **kwargs))

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _keep(result: Any) -> Any:
    holder = _results.get()
    if holder is not None:  # a list shared with the dependency (a thread pool's copied context holds it too)
        holder.append(result)
    return result


async def record_changes(request: Request, session: SessionDep) -> AsyncIterator[None]:
    if request.method not in WRITE_METHODS:
        yield
        return
    holder: list[Any] = []
    token = _results.set(holder)
    try:
        yield
    finally:
        _results.reset(token)
    caller = getattr(request.state, "caller", None)
    if caller is None:
        return
    result = holder[0] if holder else None
    status = _status(request, result)
    if not 200 <= status < 300:
        return
    path_ids = {name: str(value) for name, value in request.path_params.items()}
    object_id = _result_id(result) or (list(path_ids.values())[-1][:40] if path_ids else None)
    await service.record_api_change(
        session,
        caller,
        method=request.method,
        route=route_template(request),
        object_id=object_id,
        path_ids=path_ids,
        status_code=status,
        # The peer's address as the server reports it: behind a proxy, the address the server was told to
        # trust (uvicorn's --proxy-headers and --forwarded-allow-ips).
        ip_address=request.client.host if request.client else None,
        request_id=current_request_id(),
    )


def _status(request: Request, result: Any) -> int:
    if isinstance(result, Response):
        return result.status_code
    route = request.scope.get("route")
    return getattr(route, "status_code", None) or 200


def _result_id(result: Any) -> str | None:
    if isinstance(result, StreamingResponse):
        return None
    if isinstance(result, Response):
        body = getattr(result, "body", b"")
        if not body or len(body) > MAX_PARSED_BODY:
            return None
        try:
            result = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    return service.response_id(result)
