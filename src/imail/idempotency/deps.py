"""The `Idempotency-Key` step of a POST: a dependency that routers list after their guard, so a retry is first
authenticated, charged to the rate limiter and checked against the route's scopes like any request (the caller
comes from the guard's own dependency, solved once per request). Then it either claims the key for this API
key, or stops the request with the stored response (`Replayed`, rendered by `replayed_response`)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Depends, Request

from imail.auth.deps import CallerDep
from imail.errors import InvalidField
from imail.idempotency import service
from imail.idempotency.recorder import CLAIM, FINGERPRINT, HEADER, RequestFingerprint
from imail.kit.responses import JSONBody


class Replayed(Exception):
    """The request is a retry of one this API key already made: answer with its stored response."""

    def __init__(self, replay: service.Replay):
        super().__init__("idempotent replay")
        self.replay = replay


async def idempotent(request: Request, caller: CallerDep) -> None:
    if request.method != "POST":
        return
    key = request.headers.get(HEADER)
    if key is None:
        return
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidField("Idempotency-Key must be 1–255 printable characters", "Idempotency-Key")
    fingerprint: RequestFingerprint = getattr(request.state, FINGERPRINT)
    if not fingerprint.complete:  # a route without a body parameter: nothing has read it yet
        async for _ in request.stream():
            pass
    state = request.app.state
    ttl = timedelta(hours=state.settings.idempotency_ttl_hours)
    outcome = await service.claim(state.database, caller, key, fingerprint.hexdigest(), ttl)
    if isinstance(outcome, service.Replay):
        raise Replayed(outcome)
    setattr(request.state, CLAIM, outcome)


Idempotent = Depends(idempotent)


async def replayed_response(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, Replayed)
    replay = exc.replay
    response = JSONBody(None, status_code=replay.status, headers=replay.headers)
    response.body = replay.body
    response.headers["content-length"] = str(len(replay.body))
    response.headers["Idempotent-Replayed"] = "true"
    return response
