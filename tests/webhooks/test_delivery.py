"""Delivery to a real HTTP receiver on loopback, driven by calling the worker function directly."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from imail.events.service import record_event
from imail.kit import versions
from imail.kit.clock import utcnow
from imail.kit.tenancy import Tenant
from imail.models import WebhookDelivery, WebhookEndpoint
from imail.webhooks.fanout import deliver_to
from tests.fixtures.webhook_receiver import Reply
from tests.sending.conftest import Clock
from tests.webhooks.conftest import create_endpoint, deliveries, drive, emit


def imail_signature_ok(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (the README's Python example)."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def test_signature_verifies_over_the_raw_body_and_a_changed_byte_fails(
    client, workspace, database, receiver, worker_context
):
    created = await create_endpoint(client, workspace.headers(), receiver.url())
    secret = created["secret"]
    event = await emit(database, workspace.workspace_id, "email.sent")
    await drive(worker_context(), lambda: len(receiver.requests) == 1)

    request = receiver.requests[0]
    body, headers = request.body, request.headers
    assert imail_signature_ok(secret, body, headers["x-imail-signature"])
    assert headers["x-imail-event-id"] == event.id
    assert headers["x-imail-event-type"] == "email.sent"
    assert headers["content-type"] == "application/json"
    # The body is the contract's envelope.
    sent = json.loads(body)
    assert sent == {
        "id": event.id,
        "type": "email.sent",
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "livemode": True,
        "data": event.data,
    }
    # Standard Webhooks: the spec's own library accepts it.
    assert StandardWebhook(secret).verify(body, headers) == sent
    assert headers["webhook-id"] == event.id

    for position in (0, len(body) // 2, len(body) - 1):
        tampered = bytearray(body)
        tampered[position] ^= 0x01
        assert not imail_signature_ok(secret, bytes(tampered), headers["x-imail-signature"])
        with pytest.raises(WebhookVerificationError):
            StandardWebhook(secret).verify(bytes(tampered), headers)
    # And another endpoint's secret doesn't verify it either.
    other = await create_endpoint(client, workspace.headers(), receiver.url("/other"))
    assert not imail_signature_ok(other["secret"], body, headers["x-imail-signature"])

    [row] = await deliveries(database, webhook_id=created["id"])
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == (
        "succeeded",
        1,
        200,
        None,
    )


async def test_a_receiver_failing_the_first_attempts_gets_the_same_event_after_recovery(
    client, workspace, database, receiver, worker_context
):
    receiver.handler = lambda request, nth: Reply(500, body=b"boom") if nth <= 3 else Reply(204, body=b"")
    created = await create_endpoint(client, workspace.headers(), receiver.url())
    event = await emit(database, workspace.workspace_id)
    ctx = worker_context()

    await drive(ctx, lambda: len(receiver.requests) == 1)
    [row] = await deliveries(database)
    assert (row.status, row.attempts, row.last_status_code, row.last_error, row.last_response) == (
        "pending",
        1,
        500,
        "HTTP 500",
        "boom",
    )
    assert row.next_attempt_at is not None and row.next_attempt_at > row.last_attempt_at

    await drive(ctx, lambda: len(receiver.requests) == 4)
    assert [r.event_id for r in receiver.requests] == [event.id] * 4
    assert len({r.body for r in receiver.requests}) == 1  # the same bytes every time
    [row] = await deliveries(database)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("succeeded", 4, 204, None)
    listed = (
        await client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=workspace.headers())
    ).json()
    assert listed["data"][0]["status"] == "succeeded" and listed["data"][0]["attempts"] == 4


async def test_a_receiver_that_times_out_gets_the_event_on_a_later_attempt(
    client, workspace, database, receiver, worker_context
):
    never = asyncio.Event()

    async def silent_first(request, nth):
        if nth == 1:
            await never.wait()  # never answers: the sender's timeout, whatever the machine's speed, ends it
        return Reply(200)

    receiver.handler = silent_first
    await create_endpoint(client, workspace.headers(), receiver.url())
    event = await emit(database, workspace.workspace_id)
    ctx = worker_context(webhooks_timeout=0.3)

    await drive(ctx, lambda: len(receiver.requests) == 1)
    await drive(ctx, lambda: _attempted(database))
    [row] = await deliveries(database)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_status_code is None and row.last_error == "timed out after 0.3 s"
    await drive(ctx, lambda: status_is(database, "succeeded"))
    # The same event every time (a busy machine may let a later answer time out too: it is simply retried).
    assert len(receiver.requests) >= 2 and {r.event_id for r in receiver.requests} == {event.id}


async def status_is(database, status: str) -> bool:
    [row] = await deliveries(database)
    return row.status == status


async def test_refused_connection_is_retried_then_failed_after_the_deadline(
    client, workspace, database, receiver, worker_context
):
    port = receiver.port
    await receiver.close()  # nothing listens there any more
    created = await create_endpoint(client, workspace.headers(), f"http://127.0.0.1:{port}/hook")
    event = await emit(database, workspace.workspace_id)
    # The worker's clock only moves when the test moves it: each attempt happens exactly when it is due.
    clock = Clock(event.created_at)
    ctx = worker_context(clock, webhooks_retry_schedule=[0.05, 0.05], webhooks_give_up_after=2.0)
    deadline = event.created_at + timedelta(seconds=2)
    for attempts, wait in ((1, 0.05), (2, 0.05)):  # the two scheduled retries
        assert await deliver_once(ctx) == 1
        [row] = await deliveries(database)
        assert (row.status, row.attempts) == ("pending", attempts)
        assert row.last_error.startswith("could not connect")
        assert row.next_attempt_at - clock.now == pytest.approx(timedelta(seconds=wait), rel=0.11)
        assert await deliver_once(ctx) == 0  # not due yet
        clock.now = row.next_attempt_at
    assert await deliver_once(ctx) == 1
    [row] = await deliveries(database)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 3, deadline)  # the final one
    clock.now = deadline - timedelta(seconds=0.5)
    assert await deliver_once(ctx) == 0
    clock.now = deadline
    assert await deliver_once(ctx) == 1
    [row] = await deliveries(database)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 4, None)
    assert row.last_error.startswith("could not connect")
    endpoint = (await client.get(f"/v1/webhooks/{created['id']}", headers=workspace.headers())).json()
    assert endpoint["status"] == "enabled"  # failing for 2 s is not failing for 24 h


async def test_retry_after_is_honoured(client, workspace, database, receiver, worker_context):
    receiver.handler = lambda request, nth: Reply(429, {"Retry-After": "1"}) if nth == 1 else Reply(200)
    await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    await drive(worker_context(), lambda: len(receiver.requests) == 2)
    gap = receiver.requests[1].at - receiver.requests[0].at
    assert gap >= 0.95, gap  # the schedule alone would have retried after 0.05 s


async def test_410_disables_the_endpoint_at_once_and_enable_turns_it_back_on(
    client, workspace, database, receiver, worker_context
):
    receiver.handler = lambda request, nth: Reply(410, body=b"gone")
    created = await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    await emit(database, workspace.workspace_id)
    ctx = worker_context(webhooks_batch_size=1)
    await drive(ctx, lambda: len(receiver.requests) == 1)
    await drive(ctx, lambda: _all_final(database))
    assert len(receiver.requests) == 1  # the second delivery is not attempted
    rows = await deliveries(database)
    assert sorted(r.status for r in rows) == ["failed", "failed"]
    assert sorted(r.attempts for r in rows) == [0, 1]
    got = (await client.get(f"/v1/webhooks/{created['id']}", headers=workspace.headers())).json()
    assert got["status"] == "disabled" and "410" in got["disabled_reason"]

    await emit(database, workspace.workspace_id)  # while disabled: nothing is owed
    assert len(await deliveries(database)) == 2
    conflict = await client.post(f"/v1/webhooks/{created['id']}/test", headers=workspace.headers())
    assert conflict.status_code == 409

    receiver.handler = lambda request, nth: Reply(200)
    enabled = await client.post(f"/v1/webhooks/{created['id']}/enable", headers=workspace.headers())
    assert enabled.status_code == 200
    assert (enabled.json()["status"], enabled.json()["disabled_reason"]) == ("enabled", None)
    event = await emit(database, workspace.workspace_id)
    await drive(ctx, lambda: len(receiver.requests) == 2)
    assert receiver.requests[-1].event_id == event.id


async def _all_final(database) -> bool:
    return all(r.status != "pending" for r in await deliveries(database))


async def test_an_endpoint_failing_every_attempt_for_the_disable_period_is_disabled(
    client, workspace, database, receiver, worker_context
):
    receiver.handler = lambda request, nth: Reply(503)
    created = await create_endpoint(client, workspace.headers(), receiver.url())
    ctx = worker_context(webhooks_disable_after=86400.0, webhooks_give_up_after=86400.0)
    await emit(database, workspace.workspace_id)
    await drive(ctx, lambda: len(receiver.requests) == 1)
    async with database.transaction() as session:
        endpoint = await session.get(WebhookEndpoint, created["id"])
        assert endpoint.status == "enabled" and endpoint.failing_since is not None
        # Pretend it has been failing for a day (the clock is the database's, not a sleep).
        endpoint.failing_since = utcnow() - timedelta(hours=24, seconds=1)
    await drive(ctx, lambda: len(receiver.requests) == 2)
    got = (await client.get(f"/v1/webhooks/{created['id']}", headers=workspace.headers())).json()
    assert got["status"] == "disabled"
    assert "every delivery attempt failed for 24 hours" in got["disabled_reason"]
    [row] = await deliveries(database)
    assert row.status == "failed"


async def test_a_success_resets_the_failing_clock(client, workspace, database, receiver, worker_context):
    receiver.handler = lambda request, nth: Reply(500) if nth == 1 else Reply(200)
    created = await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    ctx = worker_context()
    await drive(ctx, lambda: len(receiver.requests) == 1)
    async with database.transaction() as session:
        assert (await session.get(WebhookEndpoint, created["id"])).failing_since is not None
    await drive(ctx, lambda: status_is(database, "succeeded"))
    async with database.transaction() as session:
        assert (await session.get(WebhookEndpoint, created["id"])).failing_since is None


async def test_redirects_are_not_followed(client, workspace, database, receiver, worker_context):
    receiver.handler = lambda request, nth: (
        Reply(302, {"Location": receiver.url("/elsewhere")}) if request.path == "/hook" else Reply(200)
    )
    await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    await drive(worker_context(), lambda: len(receiver.requests) == 1)
    [row] = await deliveries(database)
    assert row.status == "pending" and row.last_status_code == 302 and "redirects" in row.last_error
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_an_event_rolled_back_owes_no_delivery(client, workspace, database, receiver, worker_context):
    await create_endpoint(client, workspace.headers(), receiver.url())
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await record_event(
                session, Tenant(workspace.workspace_id, True), "email.sent", {"message_id": "msg_x"}
            )
            raise RuntimeError("the change failed")
    assert await deliveries(database) == []
    assert await deliver_once(worker_context()) == 0
    assert receiver.requests == []


async def deliver_once(ctx) -> int:
    from imail.workers.webhooks import deliver_webhooks

    return await deliver_webhooks(ctx)


async def test_workspaces_never_receive_each_others_events(
    client, workspace, other_workspace, database, receiver, worker_context
):
    mine = await create_endpoint(client, workspace.headers(), receiver.url("/a"))
    theirs = await create_endpoint(client, other_workspace.headers(), receiver.url("/b"))
    a = [await emit(database, workspace.workspace_id) for _ in range(3)]
    b = [await emit(database, other_workspace.workspace_id) for _ in range(2)]
    await drive(worker_context(), lambda: len(receiver.requests) == 5)
    await asyncio.sleep(0.1)
    assert len(receiver.requests) == 5
    assert sorted(r.event_id for r in receiver.requests if r.path == "/a") == sorted(e.id for e in a)
    assert sorted(r.event_id for r in receiver.requests if r.path == "/b") == sorted(e.id for e in b)
    # Each endpoint's delivery log holds only its own; the other workspace's endpoint is a 404.
    log = (await client.get(f"/v1/webhooks/{mine['id']}/deliveries", headers=workspace.headers())).json()
    assert sorted(d["event_id"] for d in log["data"]) == sorted(e.id for e in a)
    cross = await client.get(f"/v1/webhooks/{theirs['id']}/deliveries", headers=workspace.headers())
    assert cross.status_code == 404


async def test_test_mode_events_go_only_to_test_endpoints(
    client, workspace, database, receiver, worker_context
):
    live = await create_endpoint(client, workspace.headers(live=True), receiver.url("/live"))
    test = await create_endpoint(client, workspace.headers(live=False), receiver.url("/test"))
    assert (live["livemode"], test["livemode"]) == (True, False)
    live_event = await emit(database, workspace.workspace_id, livemode=True)
    test_event = await emit(database, workspace.workspace_id, livemode=False)
    await drive(worker_context(), lambda: len(receiver.requests) == 2)
    await asyncio.sleep(0.1)
    by_path = {r.path: r for r in receiver.requests}
    assert set(by_path) == {"/live", "/test"} and len(receiver.requests) == 2
    assert (
        by_path["/live"].event_id == live_event.id and json.loads(by_path["/live"].body)["livemode"] is True
    )
    assert (
        by_path["/test"].event_id == test_event.id and json.loads(by_path["/test"].body)["livemode"] is False
    )
    # The ledgers don't see each other's endpoints.
    listed_live = (await client.get("/v1/webhooks", headers=workspace.headers(live=True))).json()
    assert [w["id"] for w in listed_live["data"]] == [live["id"]]
    assert (
        await client.get(f"/v1/webhooks/{test['id']}", headers=workspace.headers(live=True))
    ).status_code == 404


async def test_subscriptions_filter_event_types(client, workspace, database, receiver, worker_context):
    await create_endpoint(client, workspace.headers(), receiver.url("/replies"), ["reply.received"])
    await create_endpoint(client, workspace.headers(), receiver.url("/all"), ["*"])
    await emit(database, workspace.workspace_id, "email.opened")
    # internal types (analytics only) go to no endpoint, not even "*"
    await emit(
        database, workspace.workspace_id, "email.auto_replied", {"message_id": "msg_1", "reply_id": "rpl_0"}
    )
    reply = await emit(
        database,
        workspace.workspace_id,
        "reply.received",
        {"reply_id": "rpl_1", "from_email": "ana@example.com"},
    )
    await drive(worker_context(), lambda: len(receiver.requests) == 3)
    await asyncio.sleep(0.1)
    assert [r.event_id for r in receiver.requests if r.path == "/replies"] == [reply.id]
    assert sorted(r.headers["x-imail-event-type"] for r in receiver.requests if r.path == "/all") == [
        "email.opened",
        "reply.received",
    ]


async def test_endpoints_pinned_before_2026_05_10_never_receive_the_newer_events(
    client, workspace, database, receiver, worker_context
):
    old = await create_endpoint(
        client, workspace.headers(**{"Imail-Version": "2026-04-22"}), receiver.url("/old")
    )
    new = await create_endpoint(client, workspace.headers(), receiver.url("/new"))
    assert (old["api_version"], new["api_version"]) == ("2026-04-22", versions.LATEST.isoformat())
    soft = await emit(database, workspace.workspace_id, "email.bounced.soft")
    paused = await emit(
        database,
        workspace.workspace_id,
        "warmup.threshold_paused",
        {"inbox_id": "inb_1", "reason": "spam rate"},
    )
    hard = await emit(database, workspace.workspace_id, "email.bounced.hard")
    await drive(worker_context(), lambda: len(receiver.requests) == 4)
    await asyncio.sleep(0.1)
    assert [r.event_id for r in receiver.requests if r.path == "/old"] == [hard.id]
    assert sorted(r.event_id for r in receiver.requests if r.path == "/new") == sorted(
        [soft.id, paused.id, hard.id]
    )


async def test_the_test_endpoint_sends_a_signed_test_event(
    client, workspace, database, receiver, worker_context
):
    created = await create_endpoint(client, workspace.headers(), receiver.url(), ["reply.received"])
    response = await client.post(f"/v1/webhooks/{created['id']}/test", headers=workspace.headers())
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (
        queued["status"] == "pending"
        and queued["event_type"] == "webhook.test"
        and queued["id"].startswith("dlv_")
    )
    await drive(worker_context(), lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
    assert request.event_id == queued["event_id"]
    assert imail_signature_ok(created["secret"], request.body, request.headers["x-imail-signature"])
    assert json.loads(request.body)["data"]["webhook_id"] == created["id"]
    log = (await client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=workspace.headers())).json()
    assert [(d["id"], d["status"]) for d in log["data"]] == [(queued["id"], "succeeded")]


async def test_a_deleted_endpoint_gets_nothing_more(client, workspace, database, receiver, worker_context):
    created = await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    deleted = await client.delete(f"/v1/webhooks/{created['id']}", headers=workspace.headers())
    assert deleted.json() == {"id": created["id"], "object": "webhook", "deleted": True}
    [row] = await deliveries(database)
    assert (row.status, row.attempts, row.last_error) == (
        "failed",
        0,
        "not attempted: the endpoint was deleted",
    )
    await emit(database, workspace.workspace_id)
    assert len(await deliveries(database)) == 1  # nothing new is owed to it
    assert await deliver_once(worker_context()) == 0
    assert receiver.requests == []
    assert (await client.get("/v1/webhooks", headers=workspace.headers())).json()["data"] == []


async def test_a_delivery_added_for_an_endpoint_deleted_meanwhile_is_never_attempted(
    client, workspace, database, receiver, worker_context
):
    """The race a soft delete allows: a transaction read the endpoint just before it was deleted."""
    created = await create_endpoint(client, workspace.headers(), receiver.url())
    async with database.transaction() as session:
        await session.execute(update(WebhookEndpoint).values(status="deleted"))
    async with database.transaction() as session:
        event = await record_event(
            session, Tenant(workspace.workspace_id, True), "email.sent", {"message_id": "msg_1"}
        )
        await deliver_to(session, event, created["id"])
    await drive(worker_context(), lambda: _all_final(database))
    [row] = await deliveries(database)
    assert (row.status, row.attempts, row.last_error) == (
        "failed",
        0,
        "not attempted: the endpoint is deleted",
    )
    assert receiver.requests == []


async def test_private_targets_are_refused_at_send_time_too(
    client, workspace, database, receiver, worker_context
):
    """An endpoint whose host now points inside the network (or was allowed by a since-changed setting)."""
    created = await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    await drive(worker_context(webhooks_allow_private=False), lambda: _attempted(database))
    assert receiver.requests == []
    [row] = await deliveries(database)
    assert row.status == "pending" and "private" in row.last_error
    assert created["id"] == row.webhook_id


async def _attempted(database) -> bool:
    return all(r.attempts > 0 for r in await deliveries(database))


async def test_a_lease_left_by_a_dead_worker_is_taken_over(
    client, workspace, database, receiver, worker_context
):
    from imail.webhooks.repository import DeliveryQueue

    await create_endpoint(client, workspace.headers(), receiver.url())
    event = await emit(database, workspace.workspace_id)
    clock = Clock(utcnow())
    async with database.transaction() as session:  # a worker claims, then dies before sending
        [job] = await DeliveryQueue(session).claim(
            clock.now, 10, clock.now + timedelta(seconds=30), "dead-worker#1"
        )
    assert job.event_id == event.id
    ctx = worker_context(clock)
    clock.advance(seconds=29)
    assert await deliver_once(ctx) == 0  # leased: invisible
    clock.advance(seconds=1)
    await drive(ctx, lambda: len(receiver.requests) == 1)  # due again once the lease ends
    # The dead worker's late result can't overwrite the new holder's.
    async with database.transaction() as session:
        assert await DeliveryQueue(session).record([_late_row(job.delivery_id, "dead-worker#1")]) == 0
    [row] = await deliveries(database)
    assert (row.status, row.attempts) == ("succeeded", 1)
    assert row.claimed_by.startswith("test-worker-")


def _late_row(delivery_id: str, token: str) -> dict:
    now = utcnow()
    return {
        "b_id": delivery_id,
        "b_token": token,
        "b_status": "failed",
        "b_inc": 1,
        "b_next": None,
        "b_at": now,
        "b_code": 500,
        "b_error": "late",
        "b_response": None,
        "b_ms": 1,
        "b_now": now,
    }


async def test_deliveries_go_out_concurrently_but_bounded_and_once_each(
    client, workspace, database, receiver, worker_context
):
    open_now = peak = 0

    async def slowish(request, nth):
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        await asyncio.sleep(0.05)
        open_now -= 1
        return Reply(200)

    receiver.handler = slowish
    await create_endpoint(client, workspace.headers(), receiver.url())
    events = [await emit(database, workspace.workspace_id) for _ in range(40)]
    await drive(
        worker_context(webhooks_batch_size=20, webhooks_concurrency=6), lambda: len(receiver.requests) == 40
    )
    assert 1 < peak <= 6, peak
    assert sorted(r.event_id for r in receiver.requests) == sorted(e.id for e in events)
    assert set(receiver.attempts.values()) == {1}


async def test_fast_answers_are_sent_one_after_another(
    client, workspace, database, receiver, worker_context, monkeypatch
):
    """Concurrency only opens up while answers are slow (each open connection costs CPU on every request)."""
    open_now = peak = 0

    async def quick(request, nth):
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        await asyncio.sleep(0.001)
        open_now -= 1
        return Reply(200)

    # No answer ever counts as slow, however long a busy machine takes to give it: only answers open the next.
    monkeypatch.setattr("imail.workers.webhooks.RAMP_AFTER", None)
    receiver.handler = quick
    await create_endpoint(client, workspace.headers(), receiver.url())
    for _ in range(20):
        await emit(database, workspace.workspace_id)
    await drive(
        worker_context(webhooks_batch_size=20, webhooks_concurrency=6), lambda: len(receiver.requests) == 20
    )
    assert peak == 1


async def test_a_claim_skips_deliveries_not_yet_due(client, workspace, database, receiver, worker_context):
    await create_endpoint(client, workspace.headers(), receiver.url())
    await emit(database, workspace.workspace_id)
    async with database.transaction() as session:
        await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() + timedelta(hours=1)))
    assert await deliver_once(worker_context()) == 0
    assert receiver.requests == []


async def test_retention_purges_old_final_deliveries_and_deleted_endpoints(
    client, workspace, database, receiver, worker_context
):
    from ulid import ULID

    from imail.workers.webhooks import purge_webhook_deliveries

    kept = await create_endpoint(client, workspace.headers(), receiver.url("/kept"))
    gone = await create_endpoint(client, workspace.headers(), receiver.url("/gone"))
    for _ in range(3):
        await emit(database, workspace.workspace_id)
    ctx = worker_context(webhooks_retention_days=1)
    await drive(ctx, lambda: len(receiver.requests) == 6)
    await emit(database, workspace.workspace_id)  # still pending: never purged, however old
    assert (await client.delete(f"/v1/webhooks/{gone['id']}", headers=workspace.headers())).status_code == 200
    async with database.transaction() as session:
        rows = list((await session.execute(select(WebhookDelivery))).scalars())
        # Age everything by two days (ids are ULIDs: their time is the creation time).
        old = utcnow() - timedelta(days=2)
        for row in rows:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == row.id)
                .values(id="dlv_" + str(ULID.from_datetime(old)))
            )
        await session.execute(update(WebhookEndpoint).values(updated_at=old))
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.webhook_id == gone["id"]).values(status="failed")
        )
    assert (
        await purge_webhook_deliveries(ctx) == 7
    )  # 6 delivered, 1 failed (the deleted endpoint's pending one)
    remaining = await deliveries(database)
    assert [(r.webhook_id, r.status) for r in remaining] == [(kept["id"], "pending")]
    async with database.transaction() as session:
        assert await session.get(WebhookEndpoint, gone["id"]) is None
        assert await session.get(WebhookEndpoint, kept["id"]) is not None
    assert await purge_webhook_deliveries(ctx) == 0


async def test_an_endpoint_that_does_not_answer_does_not_hold_up_the_batch(
    client, workspace, database, receiver, worker_context
):
    never = asyncio.Event()

    async def hang_on_slow(request, nth):
        if request.path == "/slow":
            await never.wait()
        return Reply(200)

    receiver.handler = hang_on_slow
    slow = await create_endpoint(client, workspace.headers(), receiver.url("/slow"), ["email.opened"])
    await create_endpoint(client, workspace.headers(), receiver.url("/fast"), ["email.sent"])
    for _ in range(4):
        await emit(database, workspace.workspace_id, "email.opened")
    fast_events = [await emit(database, workspace.workspace_id, "email.sent") for _ in range(4)]
    # The timeout is what ends the /slow request (it never answers); it is long enough that an answer from
    # /fast never runs into it on a busy machine.
    ctx = worker_context(webhooks_timeout=2.0, webhooks_concurrency=4, webhooks_retry_schedule=[30.0])
    assert await deliver_once(ctx) == 8
    # One request to /slow timed out; its three siblings were not queued behind it, each waiting out its own
    # timeout, but given back untried; /fast got all of its own meanwhile.
    assert [r.path for r in receiver.requests].count("/slow") == 1
    assert sorted(r.event_id for r in receiver.requests if r.path == "/fast") == sorted(
        e.id for e in fast_events
    )
    rows = await deliveries(database, webhook_id=slow["id"])
    assert sorted(r.attempts for r in rows) == [0, 0, 0, 1]
    assert all(r.status == "pending" and r.next_attempt_at > utcnow() for r in rows)
