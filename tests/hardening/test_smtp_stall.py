"""An SMTP server that stalls in the middle of DATA holds up only its own inbox: the other inbox's emails of
the same batch go out and are recorded while it hangs; the stalled send ends at the mail timeout as in doubt
(left for the Sent-folder check, never resent blindly) and that inbox's remaining emails are given back
untried."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import select

from imail.models.sending import Message
from imail.workers import sending as sending_worker
from tests.sending.conftest import freeze_api_clock
from tests.sending.test_crash_and_scale import STEP

LEADS = 8


async def statuses(outreach) -> dict[str, dict[str, str]]:
    """inbox id -> {message id: status}."""
    by_inbox: dict[str, dict[str, str]] = {}
    async with outreach.database.transaction() as session:
        for message in (await session.execute(select(Message))).scalars():
            by_inbox.setdefault(message.inbox_id, {})[message.id] = message.status
    return by_inbox


async def test_a_server_stalling_mid_data_does_not_hold_up_other_inboxes(
    outreach, make_mailbox, make_smtp_server, sink, clock, monkeypatch
):
    freeze_api_clock(monkeypatch, clock)
    ctx = outreach.ctx
    stalled_server = make_smtp_server("starttls")
    unstall = threading.Event()
    stalls: list = []

    def stall(received) -> None:  # runs on the stalled server's own thread: only that server hangs
        stalls.append(received)
        unstall.wait(60)

    stalled_server.data_hook = stall
    stalled_inbox = await outreach.connect_inbox(make_mailbox("stalls", smtp=stalled_server))
    healthy_inbox = await outreach.connect_inbox(make_mailbox("healthy"))
    campaign = await outreach.campaign([STEP])
    for n in range(LEADS):
        await outreach.lead(campaign["id"], f"lead{n}@example.org", first_name=f"L{n}")
    await outreach.resume(campaign["id"])

    batch = asyncio.create_task(sending_worker.send_due(ctx))
    try:
        # The healthy inbox's share goes out and is recorded while the other server is still hanging in DATA
        # (it hangs until the mail timeout ends the batch's wait: watched until then, not for a set time).
        while not batch.done():
            healthy = (await statuses(outreach)).get(healthy_inbox, {})
            if healthy and set(healthy.values()) == {"sent"} and stalls:
                break
            await asyncio.sleep(0.05)
        by_inbox = await statuses(outreach)
        assert set(by_inbox[healthy_inbox].values()) == {"sent"}, by_inbox
        assert not batch.done() and len(stalls) == 1
        healthy_count = len(by_inbox[healthy_inbox])
        assert len(sink.messages) == healthy_count and healthy_count >= 2
        await batch
    finally:
        unstall.set()
        if not batch.done():
            batch.cancel()
    # The stall cost one timeout, not one per email waiting for that inbox: only one DATA reached the stalled
    # server, and the rest were given back untried (below).
    stalled = await outreach.rows(Message, Message.inbox_id == stalled_inbox)
    assert len(stalled) == LEADS - healthy_count and len(stalled) >= 2
    in_doubt = [m for m in stalled if m.status == "handed"]
    released = [m for m in stalled if m.status == "retry"]
    # The message whose DATA went out is in doubt (settled later from the Sent folder), never marked for
    # resending.
    assert len(in_doubt) == 1 and in_doubt[0].lease_until is not None
    # The rest were never tried: back in the queue without an attempt counted against them.
    assert len(released) == len(stalled) - 1
    assert all(m.attempts == 0 and "released unsent" in (m.smtp_response or "") for m in released)
    assert len(stalls) == 1
    # The API shows the one in doubt as still sending (found by the soak: it used to answer 500 while an email
    # was between the before-DATA mark and its outcome).
    listed = await outreach.client.get(f"/v1/campaigns/{campaign['id']}/messages", headers=outreach.headers)
    assert listed.status_code == 200, listed.text
    shown = {m["id"]: m["status"] for m in listed.json()["data"]}
    assert shown[in_doubt[0].id] == "sending" and {shown[m.id] for m in released} == {"retry"}
