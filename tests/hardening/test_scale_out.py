"""The production shape as processes on this machine: two `imail serve --no-workers` and two `imail worker` on
one PostgreSQL database and one Redis (what docker-compose.yml runs as containers). While both workers send,
one workspace's rate limit holds across both API processes; every lead's step reaches the SMTP sinks exactly
once; every event reaches the webhook receiver exactly once; and both workers shared both kinds of work."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from imail.models import Event, WebhookDelivery
from imail.models.sending import Message
from tests.conftest import TEST_SECRET
from tests.fixtures.api_servers import api_servers
from tests.fixtures.factories import make_workspace
from tests.platform.test_ratelimit_processes import SURGE_BURST, refill_allowance
from tests.sending.conftest import ALL_DAY
from tests.sending.test_crash_and_scale import STEP, WorkerProcesses
from tests.webhooks.conftest import receiver  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

INBOXES = 4
LEADS = 160
SETTLE_TIMEOUT = 120.0


async def hammer(servers, headers: dict[str, str], total: int, per_server: int = 16) -> tuple[list, float]:
    """`total` GET /v1/keys from `per_server` connections to each server at once, as fast as they answer;
    (server index, response) pairs and the seconds taken. (Bursts of hundreds at once: tests/platform.)"""
    results: list[tuple[int, httpx.Response]] = []
    remaining = [total]

    async def loop(index: int, http: httpx.AsyncClient) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            try:
                response = await http.get("/v1/keys", headers=headers)
            except httpx.RemoteProtocolError:
                # The server closed a kept-alive connection as the request went out (its keep-alive timeout
                # ran out while a busy machine held this client back): nothing was read, so send it again, as
                # HTTP clients do for an idempotent request.
                response = await http.get("/v1/keys", headers=headers)
            results.append((index, response))

    clients = [httpx.AsyncClient(base_url=s.base_url, timeout=60) for s in servers]
    started = time.monotonic()
    try:
        await asyncio.gather(*(loop(i, c) for i, c in enumerate(clients) for _ in range(per_server)))
    finally:
        for client in clients:
            await client.aclose()
    return results, time.monotonic() - started


async def wait_until(predicate, timeout: float, what: str, workers: WorkerProcesses) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{workers.log_tails()}")
        await asyncio.sleep(0.25)


async def test_two_api_and_two_worker_processes_keep_limits_sends_and_webhooks_exact(
    postgres_url,
    redis_url,
    database,
    make_mailbox,
    make_smtp_server,
    tls_cert,
    receiver,
    tmp_path,
):
    env = {
        "IMAIL_DATABASE_URL": postgres_url,
        "IMAIL_REDIS_URL": redis_url,
        "IMAIL_SECRET_KEY": TEST_SECRET,
        "IMAIL_MAIL_CA_FILE": str(tls_cert.ca_file),
        "IMAIL_MAIL_TIMEOUT": "5",
        "IMAIL_MAIL_ALLOW_PRIVATE": "1",
        "IMAIL_WEBHOOKS_ALLOW_PRIVATE": "1",
        # Small batches, so that both workers get a share of the sends and of their events' deliveries.
        "IMAIL_SENDING_BATCH_SIZE": "20",
        "IMAIL_WEBHOOKS_BATCH_SIZE": "10",
        "IMAIL_DATABASE_POOL_SIZE": "5",
        "IMAIL_DATABASE_TIMEOUT": "30",
        "IMAIL_LOG_LEVEL": "WARNING",
    }
    sender = await make_workspace(database, "apex", "Scale", per_minute=10**7, burst=10**7)
    limited = await make_workspace(database, "surge", "Limited")
    boxes = [make_mailbox(f"scale{n}", smtp=make_smtp_server("starttls")) for n in range(INBOXES)]
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")} | env
    workers = WorkerProcesses(worker_env, tmp_path)

    with api_servers(2, env) as servers:
        api = [httpx.AsyncClient(base_url=s.base_url, headers=sender.headers(), timeout=60) for s in servers]
        try:
            # Set-up spread over both API processes.
            inbox_ids = []
            for n, box in enumerate(boxes):
                created = await api[n % 2].post(
                    "/v1/inboxes", json={**box.body(), "sending_gap_minutes": 0, "daily_limit": 1000}
                )
                assert created.status_code == 201, created.text
                inbox_ids.append(created.json()["id"])
            hook = await api[1].post("/v1/webhooks", json={"url": receiver.url(), "events": ["*"]})
            assert hook.status_code == 201, hook.text
            campaign = await api[0].post(
                "/v1/campaigns",
                json={
                    "name": "Scale-out",
                    "inbox_ids": inbox_ids,
                    "steps": [STEP],
                    "send_window": ALL_DAY,
                    "daily_limit": 10_000,
                },
            )
            assert campaign.status_code == 201, campaign.text
            campaign_id = campaign.json()["id"]
            leads = [{"email": f"lead{n:04d}@example.org", "first_name": f"L{n}"} for n in range(LEADS)]
            bulk = await api[1].post("/v1/leads/bulk", json={"campaign_id": campaign_id, "leads": leads})
            assert bulk.status_code == 200 and bulk.json()["created"] == LEADS, bulk.text[:300]
            assert (await api[0].post(f"/v1/campaigns/{campaign_id}/resume")).status_code == 200

            workers.start()
            workers.start()
            # Meanwhile, another workspace's key hammers both API processes: one bucket, shared through Redis.
            results, elapsed = await hammer(servers, limited.headers(), 400)

            await wait_until(lambda: _all_sent(database), SETTLE_TIMEOUT, "every lead's email", workers)
            await wait_until(
                lambda: _all_delivered(database), SETTLE_TIMEOUT, "every webhook delivery", workers
            )
            await asyncio.sleep(0.5)  # anything still on the wire would arrive now
            assert len(workers.running()) == 2, workers.log_tails()
            api_logs = "\n".join(s.log_tail(3000) for s in servers)
        finally:
            workers.stop_all()
            for client in api:
                await client.aclose()

    statuses = Counter(r.status_code for _, r in results)
    assert set(statuses) <= {200, 429}, statuses
    assert SURGE_BURST <= statuses[200] <= SURGE_BURST + refill_allowance(elapsed), (
        statuses,
        elapsed,
        api_logs,
    )
    for index in (0, 1):
        assert {r.status_code for i, r in results if i == index} == {200, 429}, (
            f"server {index} never limited"
        )

    received = [r for box in boxes for r in box.smtp.messages]
    recipients = Counter(address for r in received for address in r.envelope_to)
    assert recipients == Counter({lead["email"]: 1 for lead in leads})
    async with database.transaction() as session:
        senders = Counter(
            w.split(":")[1] for w in (await session.execute(select(Message.worker_id))).scalars() if w
        )
        events = set((await session.execute(select(WebhookDelivery.event_id))).scalars())
        sent_events = (
            await session.execute(select(func.count()).select_from(Event).where(Event.type == "email.sent"))
        ).scalar_one()
        claimers = Counter(
            c.split(":")[1]
            for c in (await session.execute(select(WebhookDelivery.claimed_by))).scalars()
            if c
        )
    assert len(senders) == 2, f"one worker did all the sending: {senders}"
    assert sent_events == LEADS
    assert len(events) >= LEADS  # at least every email.sent
    assert {r.event_id for r in receiver.requests} == events
    assert Counter(receiver.attempts.values()) == Counter({1: len(events)}), "an event was delivered twice"
    assert len(claimers) == 2, f"one worker made every delivery: {claimers}"
    print(
        f"\nrate limit: {dict(statuses)} in {elapsed:.1f} s; sends by worker pid {dict(senders)}; "
        f"{len(events)} events, deliveries by worker pid {dict(claimers)}"
    )


async def _all_sent(database) -> bool:
    async with database.transaction() as session:
        counts = Counter((await session.execute(select(Message.status))).scalars())
    return counts == Counter({"sent": LEADS})


async def _all_delivered(database) -> bool:
    async with database.transaction() as session:
        counts = Counter((await session.execute(select(WebhookDelivery.status))).scalars())
    return counts["succeeded"] >= LEADS and set(counts) == {"succeeded"}
