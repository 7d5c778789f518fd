"""ASGI middleware applying `Idempotency-Key` to every POST; see idempotency.service for the rules."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imail.auth.service import tenant_for_token
from imail.errors import InvalidField
from imail.idempotency import service
from imail.kit.responses import JSONBody

HEADER = "idempotency-key"
# Headers that describe this delivery rather than the stored response.
_NOT_STORED = {"content-length", "date", "server", "x-request-id"}


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, ttl: timedelta):
        self.app = app
        self.ttl = ttl

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise InvalidField("Idempotency-Key must be 1–255 printable characters", "Idempotency-Key")

        body = await _read_body(receive)
        database = scope["app"].state.database
        async with database.transaction() as session:
            tenant = await tenant_for_token(session, headers.get("authorization"))
        replay_receive = _replaying(body, receive)
        if tenant is None:  # the route's own auth answers 401
            await self.app(scope, replay_receive, send)
            return

        fingerprint = hashlib.sha256(
            b"\0".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        outcome = await service.claim(database, tenant, key, fingerprint, self.ttl)
        if isinstance(outcome, service.Replay):
            response = JSONBody(None, status_code=outcome.status, headers=outcome.headers)
            response.body = outcome.body
            response.headers["content-length"] = str(len(outcome.body))
            response.headers["Idempotent-Replayed"] = "true"
            await response(scope, replay_receive, send)
            return

        status = 500
        stored_headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, stored_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                stored_headers = {
                    k.decode("latin-1"): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() not in _NOT_STORED and not k.lower().startswith(b"x-ratelimit")
                }
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await service.release(database, outcome.record_id)
            raise
        if status >= 400:
            # Nothing was written (bad input loses nothing), so as Stripe does, let a corrected retry run.
            await service.release(database, outcome.record_id)
        else:
            await service.complete(database, tenant, outcome.record_id, status, stored_headers, b"".join(chunks))


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
