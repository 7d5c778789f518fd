"""The request-context ASGI middleware: request id, `Imail-Version`, body cap, and the headers every
response carries. Pure ASGI (no BaseHTTPMiddleware) so it costs next to nothing per request."""

from __future__ import annotations

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imail.context import set_request_id
from imail.errors import ImailError, InternalError, PayloadTooLarge, error_response
from imail.kit import versions
from imail.kit.ids import new_id

log = structlog.get_logger("imail.http")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

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
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                headers["Imail-Version"] = snapshot.isoformat()
                for name, value in state.get("rate_limit_headers", {}).items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise PayloadTooLarge(f"Request body exceeds {self.max_body_bytes} bytes")
            return message

        try:
            snapshot = versions.resolve(request_headers.get(versions.HEADER))
            state["api_version"] = snapshot
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
                await error_response(InternalError("Something went wrong on our side; send the request_id to support"))(
                    scope, receive, send_with_headers
                )
