"""SIGTERM to `imail serve` (API and workers in one process): it stops accepting connections at once, lets the
request in flight finish, lets the email being handed over finish, gives the rest of its claimed emails back
unsent, and exits within the grace period. A new process then sends what was given back, each email once."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import select, text

from imail.models import WorkerHeartbeat
from imail.models.sending import Message
from tests.conftest import TEST_SECRET
from tests.fixtures.api_servers import api_servers
from tests.sending.conftest import ALL_DAY
from tests.sending.test_crash_and_scale import STEP, _until_a_backend_waits_on_a_lock

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEADS = 60
GRACE = 10.0
HAND_OVER_SECONDS = 0.3  # the SMTP server takes this long to accept each message


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def message_statuses(database) -> Counter:
    async with database.transaction() as session:
        return Counter((await session.execute(select(Message.status))).scalars())


async def test_sigterm_drains_requests_finishes_the_send_in_hand_and_gives_the_rest_back(
    postgres_url, database, client, workspace, make_mailbox, make_smtp_server, tls_cert
):
    smtp = make_smtp_server("starttls")
    smtp.data_hook = lambda received: time.sleep(HAND_OVER_SECONDS)
    box = make_mailbox("drain", smtp=smtp)
    headers = workspace.headers()
    inbox = await client.post(
        "/v1/inboxes", headers=headers, json={**box.body(), "sending_gap_minutes": 0, "daily_limit": 500}
    )
    assert inbox.status_code == 201, inbox.text
    campaign = await client.post(
        "/v1/campaigns",
        headers=headers,
        json={
            "name": "Drain",
            "inbox_ids": [inbox.json()["id"]],
            "steps": [STEP],
            "send_window": ALL_DAY,
        },
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    leads = [{"email": f"lead{n:03d}@example.org", "first_name": f"L{n}"} for n in range(LEADS)]
    bulk = await client.post(
        "/v1/leads/bulk", headers=headers, json={"campaign_id": campaign_id, "leads": leads}
    )
    assert bulk.status_code == 200 and bulk.json()["created"] == LEADS, bulk.text
    assert (await client.post(f"/v1/campaigns/{campaign_id}/resume", headers=headers)).status_code == 200

    env = {
        "IMAIL_DATABASE_URL": postgres_url,
        "IMAIL_SECRET_KEY": TEST_SECRET,
        "IMAIL_REDIS_URL": "",
        "IMAIL_MAIL_CA_FILE": str(tls_cert.ca_file),
        "IMAIL_MAIL_TIMEOUT": "5",
        "IMAIL_SHUTDOWN_GRACE": str(GRACE),
        "IMAIL_DATABASE_POOL_SIZE": "5",
        "IMAIL_DATABASE_TIMEOUT": "30",
    }
    with api_servers(1, env, workers=True) as [server]:
        await wait_until(lambda: _received(smtp, 3), 30, "the first emails to go out")
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=60) as http,
            database.engine.connect() as lock,
        ):
            # A request held in flight: its INSERT waits on a table lock this test holds.
            await lock.execute(text("LOCK TABLE suppressions IN SHARE ROW EXCLUSIVE MODE"))
            in_flight = asyncio.create_task(
                http.post("/v1/suppressions", headers=headers, json={"email": "late@example.org"})
            )
            await _until_a_backend_waits_on_a_lock(database)

            server.process.send_signal(signal.SIGTERM)
            terminated_at = time.monotonic()
            await wait_until(lambda: _refused(server.port), 5, "the listener to close")
            assert server.process.poll() is None and not in_flight.done()

            await lock.rollback()  # releases the table lock: the request goes on
            answered = await asyncio.wait_for(in_flight, 15)
        assert answered.status_code == 201, answered.text
        exit_code = await asyncio.to_thread(server.process.wait, GRACE * 2 + 5)
        stopped_after = time.monotonic() - terminated_at
        log = server.log_tail()

    # uvicorn re-raises the signal once its shutdown is complete, so the exit status says "ended by SIGTERM".
    assert exit_code in (0, -signal.SIGTERM), log
    assert stopped_after < GRACE * 2, stopped_after
    async with database.transaction() as session:  # the last step of the workers' shutdown
        assert (await session.execute(select(WorkerHeartbeat))).scalars().all() == []
    statuses = await message_statuses(database)
    # Nothing left in flight: each email was handed over (and recorded) or given back untried.
    assert set(statuses) <= {"sent", "retry"}, statuses
    assert statuses["retry"] > 0, "the shutdown came too late to leave anything to give back"
    assert statuses["sent"] == len(smtp.messages)
    async with database.transaction() as session:
        released = (await session.execute(select(Message).where(Message.status == "retry"))).scalars().all()
    assert all(m.attempts == 0 and "worker is stopping" in (m.smtp_response or "") for m in released)

    # A new process sends what was given back, and nothing twice.
    smtp.data_hook = None
    with api_servers(1, env, workers=True):
        await wait_until(lambda: _received(smtp, LEADS), 60, "every lead's email")
        await asyncio.sleep(1)
    recipients = Counter(address for received in smtp.messages for address in received.envelope_to)
    assert recipients == Counter({lead["email"]: 1 for lead in leads})
    assert await message_statuses(database) == Counter({"sent": LEADS})


async def _received(smtp, count: int) -> bool:
    return len(smtp.messages) >= count


async def _refused(port: int) -> bool:
    return await asyncio.to_thread(refuses_connections, port)
