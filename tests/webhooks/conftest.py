"""Webhook fixtures: a real HTTP receiver on loopback, worker contexts with a compressed retry schedule, and
helpers to record events and register endpoints."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from imail.db import Database
from imail.events.service import record_event
from imail.kit.clock import utcnow
from imail.kit.tenancy import Tenant
from imail.models import Event, WebhookDelivery
from imail.workers.context import WorkerContext
from imail.workers.webhooks import deliver_webhooks
from tests.fixtures.webhook_receiver import Receiver

# Compressed schedule: the shape of the real one (a few retries, then a final attempt at the deadline) with
# retries in hundredths of a second. The deadline stays out of reach of a test that waits on the wall clock,
# so a busy machine never turns a retry into a give-up; tests of the deadline move the worker's clock instead.
FAST = dict(
    webhooks_retry_schedule=[0.05, 0.05, 0.05], webhooks_retry_jitter=0.1, webhooks_give_up_after=3600.0
)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.close()


@pytest.fixture
async def worker_context(settings, database) -> AsyncIterator[Callable[..., WorkerContext]]:
    """make(clock=..., **setting_overrides) -> a WorkerContext like the runner's, with its own HTTP client;
    the clock is the wall clock unless a test passes one it moves itself."""
    clients: list[httpx.AsyncClient] = []

    def make(clock: Callable[[], datetime] = utcnow, **overrides: Any) -> WorkerContext:
        http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        clients.append(http)
        merged = settings.model_copy(update={**FAST, **overrides})
        return WorkerContext(merged, database, None, http, f"test-worker-{len(clients)}", clock=clock)

    yield make
    for http in clients:
        await http.aclose()


async def drive(
    ctx: WorkerContext, until: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0
) -> None:
    """Run delivery iterations (as the supervisor would) until `until()` holds; bounded by `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            done = until()
            if inspect.isawaitable(done):
                done = await done
            if done:
                return
            if await deliver_webhooks(ctx) == 0:
                await asyncio.sleep(0.02)


EMAIL_REF = {"message_id": "msg_01HZ8K0000000000000000TEST", "email": "ana@example.com"}


async def emit(
    database: Database,
    workspace_id: str,
    event_type: str = "email.sent",
    data: dict | None = None,
    livemode: bool = True,
) -> Event:
    """Record an event the way domain code does, in its own committed transaction."""
    payload = data if data is not None else (EMAIL_REF if event_type.startswith("email.") else None)
    if payload is None:
        raise ValueError(f"give data for {event_type}")
    async with database.transaction() as session:
        return await record_event(session, Tenant(workspace_id, livemode), event_type, payload)


async def deliveries(database: Database, **where: Any) -> list[WebhookDelivery]:
    async with database.transaction() as session:
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(WebhookDelivery, name) == value)
        return list((await session.execute(stmt)).scalars())


async def create_endpoint(
    client: httpx.AsyncClient, headers: dict, url: str, events: list[str] | None = None, **extra
) -> dict:
    response = await client.post(
        "/v1/webhooks", json={"url": url, "events": events or ["*"], **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()
