"""PostgreSQL goes away for 10 s under load: a real `imail serve` process behind a TCP proxy that drops every
connection, first refusing new ones (a stopped server), then swallowing them (a network partition). Requests
answer 503 `service_unavailable` in the contract's body within the connect timeout, never 500 and never hang;
the process recovers by itself; every write it acknowledged is in the database afterwards."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select

from imail.models import Suppression
from tests.fixtures.api_servers import api_servers
from tests.fixtures.factories import make_workspace

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CONNECT_TIMEOUT = 2.0  # IMAIL_DATABASE_TIMEOUT of the server under test
COMMAND_TIMEOUT = 5.0
# The longest an answer may take while the database is away: the connect timeout, plus waiting for a pooled
# connection (also the connect timeout), plus a loaded 2-core machine's scheduling.
ANSWER_BOUND = 2 * CONNECT_TIMEOUT + 6.0
CLIENTS = 6


@dataclass
class Load:
    """What the clients saw: every answer with its phase and duration, and the writes acknowledged."""

    phase: str = "before"
    answers: list[tuple[str, int, float, httpx.Response | None]] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    running: bool = True


async def client_loop(base_url: str, headers: dict[str, str], load: Load, n: int) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0) as http:
        i = 0
        while load.running:
            i += 1
            started = time.monotonic()
            email = None
            try:
                if i % 2:
                    email = f"c{n}-{i}-{uuid.uuid4().hex[:6]}@outage.example"
                    response = await http.post("/v1/suppressions", json={"email": email})
                else:
                    response = await http.get("/v1/suppressions", params={"limit": 5})
            except httpx.HTTPError as exc:  # a hang past 30 s or a dropped connection: both are failures here
                load.failures.append(f"{load.phase}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.monotonic() - started
            # Filed under the phase it ended in: a request the cut interrupted belongs to the outage.
            load.answers.append((load.phase, response.status_code, elapsed, response))
            if response.status_code == 201 and email:
                load.acknowledged.add(email)
            await asyncio.sleep(0.05)


def assert_unavailable_body(response: httpx.Response) -> None:
    body = response.json()
    assert set(body) == {"error", "request_id"}, body
    assert body["error"]["code"] == "service_unavailable"
    assert body["error"]["doc"].endswith("/service_unavailable")
    assert body["request_id"] == response.headers["x-request-id"]
    assert int(response.headers["retry-after"]) >= 1


async def test_database_outage_answers_503_then_recovers_without_losing_writes(
    postgres_url, database, postgres_proxy
):
    proxy, proxied_url = postgres_proxy
    apex = await make_workspace(database, "apex", "Outage", per_minute=10**8, burst=10**8)
    env = {
        "IMAIL_DATABASE_URL": proxied_url,
        "IMAIL_DATABASE_POOL_SIZE": "4",
        "IMAIL_DATABASE_TIMEOUT": str(CONNECT_TIMEOUT),
        "IMAIL_DATABASE_COMMAND_TIMEOUT": str(COMMAND_TIMEOUT),
        "IMAIL_REDIS_URL": "",
    }
    with api_servers(1, env) as [server]:
        load = Load()
        clients = [
            asyncio.create_task(client_loop(server.base_url, apex.headers(), load, n)) for n in range(CLIENTS)
        ]
        try:
            # Load first: a few rounds answered by every client (a cold process on a busy machine takes a
            # while).
            deadline = time.monotonic() + 30
            while len(load.answers) < CLIENTS * 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            load.phase = "refused"
            await proxy.cut("refuse")  # PostgreSQL stopped: connections reset, new ones refused
            await asyncio.sleep(5)
            load.phase = "partitioned"
            await proxy.cut("blackhole")  # then unreachable: connections accepted and never answered
            await asyncio.sleep(5)
            await proxy.restore()
            load.phase = "restored"
            recovered_at = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                recent = [a for a in load.answers if a[0] == "restored"][-CLIENTS * 2 :]
                if len(recent) >= CLIENTS * 2 and all(status in (200, 201) for _, status, _, _ in recent):
                    recovered_at = time.monotonic()
                    break
            load.phase = "after"
            await asyncio.sleep(2)
        finally:
            load.running = False
            await asyncio.gather(*clients, return_exceptions=True)
        log = server.log_tail(20000)

    by_phase: dict[str, Counter] = {}
    for phase, status, _, _ in load.answers:
        by_phase.setdefault(phase, Counter())[status] += 1
    slowest = {p: max((e for ph, _, e, _ in load.answers if ph == p), default=0.0) for p in by_phase}
    print(f"\nanswers by phase {by_phase}; slowest {slowest}; acknowledged writes {len(load.acknowledged)}")

    assert load.failures == [], load.failures[:5]
    assert recovered_at is not None, f"never recovered: {by_phase}\n{log}"
    # Before and once recovered: everything answers.
    assert set(by_phase["before"]) <= {200, 201} and set(by_phase["after"]) <= {200, 201}, (by_phase, log)
    # During the outage: 503 with the contract's body, never a 500, never a hang.
    for phase in ("refused", "partitioned"):
        assert by_phase[phase][503] > 0, (phase, by_phase)
    statuses = {status for _, status, _, _ in load.answers}
    assert statuses <= {200, 201, 503}, (by_phase, log)
    for phase, status, elapsed, response in load.answers:
        if status == 503:
            assert_unavailable_body(response)
        assert elapsed < ANSWER_BOUND, (phase, status, elapsed)
    assert "internal_error" not in log and "unhandled error" not in log, log

    # No acknowledged write is lost.
    async with database.transaction() as session:
        stored = set(
            (
                await session.execute(
                    select(Suppression.value).where(Suppression.workspace_id == apex.workspace_id)
                )
            ).scalars()
        )
    assert load.acknowledged <= stored, sorted(load.acknowledged - stored)[:5]
