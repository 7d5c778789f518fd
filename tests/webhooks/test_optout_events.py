"""`lead.unsubscribed` and `inbox.sending_paused` are public from snapshot 2026-12-07: endpoints pinned to it
(or unpinned) receive them, endpoints pinned to an older snapshot never do, even subscribed to everything."""

from __future__ import annotations

import asyncio
import json

from tests.webhooks.conftest import create_endpoint, drive, emit


async def test_only_endpoints_on_2026_12_07_or_later_receive_the_opt_out_and_pause_events(
    client, workspace, database, receiver, worker_context
):
    old = await create_endpoint(
        client, workspace.headers(**{"Imail-Version": "2026-12-06"}), receiver.url("/old")
    )
    new = await create_endpoint(
        client, workspace.headers(**{"Imail-Version": "2026-12-07"}), receiver.url("/new")
    )
    assert (old["api_version"], new["api_version"]) == ("2026-12-06", "2026-12-07")
    unsubscribed = await emit(
        database,
        workspace.workspace_id,
        "lead.unsubscribed",
        {"email": "ana@example.com", "source": "mailto", "lead_id": "lead_1", "message_id": "msg_1"},
    )
    paused = await emit(
        database,
        workspace.workspace_id,
        "inbox.sending_paused",
        {"inbox_id": "inb_1", "email": "sales@acme.test", "reason": "bounce_rate", "bounce_rate": 0.06},
    )
    sent = await emit(database, workspace.workspace_id, "email.sent")
    await drive(worker_context(), lambda: len(receiver.requests) == 4)
    await asyncio.sleep(0.1)
    assert [r.event_id for r in receiver.requests if r.path == "/old"] == [sent.id]
    by_id = {r.event_id: r for r in receiver.requests if r.path == "/new"}
    assert set(by_id) == {unsubscribed.id, paused.id, sent.id}
    body = json.loads(by_id[unsubscribed.id].body)
    assert body["type"] == "lead.unsubscribed" and body["data"]["source"] == "mailto"
