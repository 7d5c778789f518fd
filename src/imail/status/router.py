"""Public, unauthenticated on purpose: no Caller dependency here."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from imail.analytics.public import shared
from imail.kit.cache import Cached
from imail.status import service
from imail.status.schemas import Healthz, StatusFull

PUBLIC_CACHE = "public, max-age=30"

health_router = APIRouter(tags=["Status"])
router = APIRouter(tags=["Status"])


@health_router.get("/healthz", response_model=Healthz)
async def healthz():
    """The process is alive (touches nothing else)."""
    return Healthz()


def status_cache(request: Request) -> Cached[StatusFull]:
    state = request.app.state
    if getattr(state, "status_cache", None) is None:
        # Per process, and through Redis when configured.
        state.status_cache = shared(
            state.redis,
            "status",
            StatusFull,
            lambda: service.full_status(state.database, state.redis, state.rate_limiter, state.settings),
            state.settings.database_url,
        )
    return state.status_cache


@router.get("/status/full", response_model=StatusFull)
async def get_full_status(request: Request, response: Response):
    """Component health (database, Redis), computed at most once per 30 s per process."""
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return await status_cache(request).get()
