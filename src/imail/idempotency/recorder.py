"""The transport side of `Idempotency-Key`, pure ASGI, deciding nothing (who may replay what is settled in the
`idempotent` dependency, after the route's guard): it fingerprints the request body as it streams past, since
a route may consume it before the dependency runs (a multipart upload), and it keeps the response of a request
the dependency claimed, or releases the claim when the request failed."""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imail.idempotency import service

HEADER = "idempotency-key"
CLAIM = "idempotency_claim"  # request state: the claim `idempotent` made, completed or released here
FINGERPRINT = "idempotency_fingerprint"  # request state: the RequestFingerprint of this request
# Headers that describe this delivery rather than the stored response.
_NOT_STORED = {"content-length", "date", "server", "x-request-id"}


class RequestFingerprint:
    """SHA-256 of the path, the query string and the body, fed as the body is received."""

    def __init__(self, scope: Scope):
        self._hash = hashlib.sha256(b"\0".join([scope["path"].encode(), scope.get("query_string", b""), b""]))
        self.complete = False

    def feed(self, message: Message) -> None:
        if message["type"] == "http.request" and not self.complete:
            self._hash.update(message.get("body", b""))
            self.complete = not message.get("more_body", False)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class IdempotencyRecorder:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or HEADER not in Headers(scope=scope):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        fingerprint = state[FINGERPRINT] = RequestFingerprint(scope)
        status = 500
        stored_headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def fingerprinted() -> Message:
            message = await receive()
            fingerprint.feed(message)
            return message

        async def capture(message: Message) -> None:
            nonlocal status, stored_headers
            if CLAIM in state:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    stored_headers = {
                        k.decode("latin-1"): v.decode("latin-1")
                        for k, v in message.get("headers", [])
                        if k.decode("latin-1").lower() not in _NOT_STORED
                        and not k.lower().startswith(b"x-ratelimit")
                    }
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))
            await send(message)

        database = scope["app"].state.database
        try:
            await self.app(scope, fingerprinted, capture)
        except BaseException:
            if (claimed := state.get(CLAIM)) is not None:
                await service.release(database, claimed)
            raise
        claimed = state.get(CLAIM)
        if claimed is None:
            return
        if status >= 400:
            # Nothing was written (bad input loses nothing), so as Stripe does, let a corrected retry run.
            await service.release(database, claimed)
        else:
            await service.complete(database, claimed, status, stored_headers, b"".join(chunks))
