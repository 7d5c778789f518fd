"""The request-context ASGI middleware: request id, `Imail-Version`, body cap, text that cannot be stored, and
the headers every response carries; and HEAD answered as GET. Pure ASGI (no BaseHTTPMiddleware) so it costs
next to nothing per request."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imail.errors import ImailError, InternalError, InvalidField, PayloadTooLarge, RateLimited, error_response
from imail.kit import pages, versions
from imail.kit.ids import new_id
from imail.kit.ratelimit import Decision, Limit, RateLimiter
from imail.kit.request_id import set_request_id
from imail.kit.text import printable_field, unstorable, unstorable_message

log = structlog.get_logger("imail.http")

# Where JSON can carry unstorable text: only as an escape (a raw NUL is not valid JSON, a raw surrogate not
# valid UTF-8). An escaped backslash before it (`\\u0000` in JSON is text) also matches: the parsed body is
# the authority, this only decides whether to look.
JSON_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def _query_unstorable(query_string: bytes) -> str | None:
    """The name of the first query parameter whose name or value cannot be stored, decoded as Starlette
    does."""
    if b"%" not in query_string and b"\x00" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if unstorable(name) or unstorable(value):
            return printable_field(name) or "query"
    return None


def _json_unstorable(document: Any) -> str | None:
    """The path of the first string (or key) that cannot be stored, written as validation errors name fields
    (a.b[0]). Iterative: a body nested as deep as the JSON parser allows cannot exhaust the stack here."""
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if unstorable(value):
                return path
            continue
        items = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        children = []
        for key, item in items:
            child = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
            if isinstance(key, str) and unstorable(key):
                return child
            children.append((child, item))
        pending.extend(reversed(children))  # depth-first, in document order
    return None


def _body_unstorable(body: bytes) -> InvalidField | None:
    # The substring test runs at memchr speed; the regex and the parse only when it hits, so a 1 MB body
    # without an escape costs microseconds.
    if b"\\u" not in body or not JSON_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # malformed (or absurdly nested) JSON: the body parser answers invalid_json
    if (field := _json_unstorable(document)) is None:
        return None
    field = printable_field(field) or None
    return InvalidField(unstorable_message(field), field)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class RequestContextMiddleware:
    """Also the rate limit of requests that no API key answers for: a request without `Authorization` (public
    endpoints, tracking links, docs) is charged to its client address before it runs, and one whose key did
    not get as far as the key's limiter (a 401, an unknown route) is charged to its address when it answers,
    so every response carries `X-RateLimit-*`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, public_limit: Limit):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.public_limit = public_limit

    def _limiter(self, scope: Scope) -> RateLimiter | None:
        app = scope.get("app")
        return getattr(getattr(app, "state", None), "rate_limiter", None)

    async def _charge_address(self, scope: Scope) -> Decision | None:
        limiter = self._limiter(scope)
        if limiter is None:
            return None
        return await limiter.hit(f"addr:{client_address(scope)}", self.public_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        set_request_id(request_id)
        state = scope.setdefault("state", {})
        request_headers = Headers(scope=scope)
        started = False
        snapshot = versions.LATEST

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if (
                    "rate_limit_headers" not in state
                    and (decision := await self._charge_address(scope)) is not None
                ):
                    state["rate_limit_headers"] = decision.headers()
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                headers["Imail-Version"] = snapshot.isoformat()
                # Set by the app on request.state, whatever the response's status: the caller's rate-limit
                # standing, and Deprecation/Sunset/Link when the request used something deprecated.
                for key in ("rate_limit_headers", "deprecation_headers"):
                    for name, value in state.get(key, {}).items():
                        if name not in headers:
                            headers[name] = value
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in pages.HTML_HEADERS.items():  # a page with its own policy keeps it
                        headers.setdefault(name, value)
            await send(message)

        received = 0
        content_type = request_headers.get("content-type", "")
        scan_body = not content_type or "json" in content_type
        chunks: list[bytes] = []

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_body_bytes:
                    raise PayloadTooLarge(f"Request body exceeds {self.max_body_bytes} bytes")
                if scan_body:
                    chunks.append(chunk)
                    if not message.get("more_body") and (error := _body_unstorable(b"".join(chunks))):
                        raise error
            return message

        try:
            snapshot = versions.resolve(request_headers.get(versions.HEADER))
            state["api_version"] = snapshot
            if unstorable(scope["path"]):
                raise InvalidField(unstorable_message("path"), "path")
            if field := _query_unstorable(scope.get("query_string", b"")):
                raise InvalidField(unstorable_message(field), field)
            if (
                "authorization" not in request_headers
                and (decision := await self._charge_address(scope)) is not None
            ):
                state["rate_limit_headers"] = decision.headers()
                if not decision.allowed:
                    raise RateLimited(
                        f"Too many requests from this address ({self.public_limit.per_minute}/min, burst "
                        f"{self.public_limit.burst}); retry after {decision.retry_after} s",
                        headers={"Retry-After": str(decision.retry_after)},
                    )
            length = request_headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                raise PayloadTooLarge(f"Request body exceeds {self.max_body_bytes} bytes")
            await self.app(scope, capped_receive, send_with_headers)
        except ImailError as exc:
            if not started:
                await error_response(exc)(scope, receive, send_with_headers)
        except Exception:
            # Anything the app's own handlers did not turn into a response: never a bare 500 or a trace.
            log.exception("unhandled error reached the edge", path=scope.get("path"))
            if not started:
                await error_response(
                    InternalError("Something went wrong on our side; send the request_id to support")
                )(scope, receive, send_with_headers)


HEAD_REQUEST = "imail.head"  # scope key: this GET is a HEAD (routes with side effects skip them)


def is_head(scope: Scope) -> bool:
    return bool(scope.get(HEAD_REQUEST))


class HeadAsGet:
    """HEAD on any GET route: the GET's status and headers (Content-Length included), without the body, as RFC
    9110 asks. FastAPI registers GET routes for GET alone, so HEAD would otherwise be a 405."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD_REQUEST: True}, receive, without_body)
