"""Real `imail worker` processes against the test database: SIGKILL mid-run loses nothing; two processes never
make the same attempt twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from imail.db import Database
from imail.events.service import record_event
from imail.kit.clock import utcnow
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant
from imail.models import Event, WebhookDelivery, WorkerHeartbeat
from tests.conftest import TEST_SECRET
from tests.fixtures.webhook_receiver import Reply
from tests.webhooks.conftest import EMAIL_REF, create_endpoint

pytestmark = pytest.mark.slow

IMAIL = Path(sys.executable).with_name("imail")


class Workers:
    """`imail worker` processes started by one test, and only those, killed at the end."""

    def __init__(self, database_url: str, tmp_path: Path):
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen] = []

    def start(self, **settings: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "IMAIL_DATABASE_URL": self.database_url,
            "IMAIL_SECRET_KEY": TEST_SECRET,
            "IMAIL_REDIS_URL": "",
            "IMAIL_WEBHOOKS_ALLOW_PRIVATE": "1",
            "IMAIL_WEBHOOKS_RETRY_SCHEDULE": "[0.2, 0.2, 0.2]",
            # A short lease (it can't be shorter than a batch can take: batch / concurrency × timeout + 5 s).
            "IMAIL_WEBHOOKS_TIMEOUT": "1",
            "IMAIL_WEBHOOKS_LEASE": "3",
            "IMAIL_WEBHOOKS_BATCH_SIZE": "10",
            "IMAIL_WEBHOOKS_CONCURRENCY": "10",
            "IMAIL_LOG_LEVEL": "WARNING",
            **{f"IMAIL_{k.upper()}": v for k, v in settings.items()},
        }
        log = open(self.tmp_path / f"worker-{len(self.processes)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen([str(IMAIL), "worker"], env=env, cwd=self.tmp_path, stdout=log, stderr=log)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("worker-*.log")))


@pytest.fixture
def workers(database, database_url, tmp_path) -> Iterator[Workers]:
    spawned = Workers(database_url, tmp_path)
    yield spawned
    spawned.stop_all()


async def wait_until(predicate, timeout: float, what: str, workers: Workers) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}; worker logs:\n{workers.logs()[-3000:]}")


async def live_workers(database: Database) -> int:
    async with database.transaction() as session:
        return (await session.execute(select(func.count()).select_from(WorkerHeartbeat))).scalar_one()


async def emit_many(database: Database, workspace_id: str, count: int, chunk: int = 250) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, chunk):
        async with database.transaction() as session:
            for _ in range(min(chunk, count - start)):
                ids.append(
                    (await record_event(session, Tenant(workspace_id, True), "email.sent", EMAIL_REF)).id
                )
    return ids


async def owe_many(database: Database, workspace_id: str, webhook_id: str, count: int) -> set[str]:
    """`count` events each owing one delivery, inserted in bulk: what record_event would leave, minus its cost
    (the fan-out itself is tested elsewhere; here only the workers' claims matter)."""
    now = utcnow()
    events = [
        {
            "id": new_id("evt"),
            "workspace_id": workspace_id,
            "livemode": True,
            "type": "email.sent",
            "created_at": now,
            "data": EMAIL_REF,
        }
        for _ in range(count)
    ]
    owed = [
        {
            "id": new_id("dlv"),
            "workspace_id": workspace_id,
            "livemode": True,
            "webhook_id": webhook_id,
            "event_id": e["id"],
            "event_type": "email.sent",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for e in events
    ]
    async with database.transaction() as session:
        await session.execute(insert(Event.__table__), events)
        await session.execute(insert(WebhookDelivery.__table__), owed)
    return {e["id"] for e in events}


async def delivery_states(database: Database) -> Counter:
    async with database.transaction() as session:
        rows = await session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        )
        return Counter(dict(rows.all()))


async def test_sigkill_mid_run_then_restart_loses_no_delivery(client, workspace, database, receiver, workers):
    async def slow(request, nth):
        await asyncio.sleep(0.1)
        return Reply(200)

    receiver.handler = slow
    await create_endpoint(client, workspace.headers(), receiver.url())
    expected = set(await emit_many(database, workspace.workspace_id, 400))

    first = workers.start()
    await wait_until(lambda: _at_least(receiver, 120), 30, "the first worker to deliver 120", workers)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    delivered_before_kill = len({r.event_id for r in receiver.requests})
    async with database.transaction() as session:
        held = (
            await session.execute(
                select(func.count()).where(
                    WebhookDelivery.status == "pending", WebhookDelivery.claimed_by.is_not(None)
                )
            )
        ).scalar_one()
    assert delivered_before_kill < len(expected), "the kill came too late to test anything"
    assert held > 0, "the kill should leave claimed (leased) deliveries behind"

    workers.start()
    await wait_until(
        lambda: _all_delivered(receiver, expected, database),
        35,
        "the restarted worker to deliver everything",
        workers,
    )
    assert {r.event_id for r in receiver.requests} == expected
    # Only attempts in flight at the kill may have reached the receiver twice (at-least-once).
    duplicates = sum(n - 1 for n in receiver.attempts.values())
    assert duplicates <= held
    assert await delivery_states(database) == Counter({"succeeded": len(expected)})


async def _at_least(receiver, count: int) -> bool:
    return len(receiver.requests) >= count


async def _all_delivered(receiver, expected: set[str], database: Database) -> bool:
    if {r.event_id for r in receiver.requests} != expected:
        return False
    return await delivery_states(database) == Counter({"succeeded": len(expected)})


async def test_two_worker_processes_never_make_the_same_attempt_twice(
    client, workspace, database, receiver, workers
):
    async def brisk(request, nth):
        await asyncio.sleep(0.002)
        return Reply(200)

    receiver.handler = brisk
    endpoint = await create_endpoint(client, workspace.headers(), receiver.url("/a"))
    workers.start()
    workers.start()
    await wait_until(lambda: _workers_up(database, 2), 20, "two workers to start", workers)

    expected = await owe_many(database, workspace.workspace_id, endpoint["id"], 2000)
    await wait_until(
        lambda: _count_at_least(database, "succeeded", 2000), 35, "2,000 deliveries to succeed", workers
    )
    await asyncio.sleep(0.3)  # anything still on the wire would show up now
    assert receiver.attempts.keys() == {(e, "/a") for e in expected}
    assert Counter(receiver.attempts.values()) == Counter({1: 2000}), "an attempt reached the receiver twice"
    async with database.transaction() as session:
        rows = (await session.execute(select(WebhookDelivery.attempts, WebhookDelivery.claimed_by))).all()
    assert {attempts for attempts, _ in rows} == {1}
    # Both processes took part (claims are tagged "<host>:<pid>:<id>#<claim>").
    by_process = Counter(claimed_by.split("#")[0] for _, claimed_by in rows)
    assert len(by_process) == 2 and min(by_process.values()) > 100, by_process
    async with database.transaction() as session:
        per_endpoint = dict(
            (
                await session.execute(
                    select(WebhookDelivery.webhook_id, func.count()).group_by(WebhookDelivery.webhook_id)
                )
            ).all()
        )
    assert per_endpoint == {endpoint["id"]: 2000}


async def _workers_up(database: Database, count: int) -> bool:
    return await live_workers(database) >= count


async def _count_at_least(database: Database, status: str, count: int) -> bool:
    return (await delivery_states(database))[status] >= count
