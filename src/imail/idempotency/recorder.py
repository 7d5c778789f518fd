"""Keeps the response of a POST whose `Idempotency-Key` the `idempotent` dependency claimed, or releases the claim
when the request failed. Pure ASGI, and it decides nothing: who may replay what is settled in the dependency."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imail.idempotency import service
from imail.idempotency.deps import CLAIM

# Headers that describe this delivery rather than the stored response.
_NOT_STORED = {"content-length", "date", "server", "x-request-id"}


class IdempotencyRecorder:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        status = 500
        stored_headers: dict[str, str] = {}
        chunks: list[bytes] = []

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
            await self.app(scope, receive, capture)
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
