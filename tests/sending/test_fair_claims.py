"""A launch or a backlog: while more is due than one claim takes, each campaign gets a share of the claim, so
one campaign's thousand first steps (which its few inboxes send a handful of at a time) do not hold every
other campaign's first emails back for claim after claim."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from imail.db import Database
from imail.models.sending import Message
from imail.sending.repository import SendQueue
from imail.workers import sending as sending_worker
from tests.sending.conftest import Clock, Outreach, freeze_api_clock

STEP = {"subject": "Hi {{first_name|there}}", "body": "<p>Hello</p>"}


async def enrol(outreach: Outreach, clock: Clock, campaign_id: str, prefix: str, count: int) -> list[str]:
    """`count` leads, each enrolled (and so due) a second after the one before."""
    ids = []
    for n in range(count):
        ids.append((await outreach.lead(campaign_id, f"{prefix}{n}@example.org"))["id"])
        clock.advance(seconds=1)
    return ids


@pytest.fixture
async def launch(outreach: Outreach, make_mailbox, clock: Clock, monkeypatch) -> dict[str, list[str]]:
    """Campaign `big` enrolled 12 leads, then `small` 2 and `late` 1, each campaign sending from an inbox of
    its own (a 10-minute gap): all due, `big`'s the oldest."""
    freeze_api_clock(monkeypatch, clock)
    leads = {}
    for name, count in (("big", 12), ("small", 2), ("late", 1)):
        inbox_id = await outreach.connect_inbox(make_mailbox(name), sending_gap_minutes=10)
        campaign = await outreach.campaign([STEP], name=name, inbox_ids=[inbox_id])
        leads[name] = await enrol(outreach, clock, campaign["id"], name, count)
        await outreach.resume(campaign["id"])
    return leads


@pytest.mark.parametrize("limit", [6, 4])
async def test_more_due_than_a_claim_takes_gives_each_campaign_a_share_round_robin(
    outreach: Outreach, clock: Clock, launch: dict[str, list[str]], limit: int
):
    async with outreach.database.transaction() as session:
        taken = [state.lead_id for state in await SendQueue(session).lock_due(clock.now, limit)]
    # 15 due: 3 campaigns, a share of 2 each (late has 1); every campaign's oldest, then every second oldest,
    # up to the limit.
    big, small, late = launch["big"], launch["small"], launch["late"]
    assert taken == [big[0], small[0], late[0], big[1], small[1]][:limit]


async def test_no_more_due_than_a_claim_takes_is_taken_whole_oldest_first(
    outreach: Outreach, clock: Clock, launch: dict[str, list[str]]
):
    async with outreach.database.transaction() as session:
        taken = [state.lead_id for state in await SendQueue(session).lock_due(clock.now, 15)]
    assert taken == [*launch["big"], *launch["small"], *launch["late"]]


async def test_a_second_worker_takes_the_next_shares_and_skips_the_locked_ones(
    outreach: Outreach, clock: Clock, launch: dict[str, list[str]], postgres_url: str
):
    database: Database = outreach.database
    async with database.transaction() as first:
        held = [state.lead_id for state in await SendQueue(first).lock_due(clock.now, 6)]
        async with database.transaction() as second:
            taken = [state.lead_id for state in await SendQueue(second).lock_due(clock.now, 6)]
    big, small, late = launch["big"], launch["small"], launch["late"]
    assert held == [big[0], small[0], late[0], big[1], small[1]]
    # The same three campaigns are due (share 2), but small's and late's due states are all held.
    assert taken == launch["big"][2:4]


async def test_the_first_claim_of_a_launch_sends_every_campaigns_first_email(
    outreach: Outreach, clock: Clock, launch: dict[str, list[str]], sink
):
    outreach.ctx.settings = outreach.ctx.settings.model_copy(update={"sending_batch_size": 6})
    assert await sending_worker.send_due(outreach.ctx) > 0  # one claim
    async with outreach.database.transaction() as session:
        sent_to = set((await session.execute(select(Message.lead_id))).scalars())
    # Oldest first, the claim would have held big's 6 oldest leads, for big's one inbox to send one.
    assert sent_to == {launch["big"][0], launch["small"][0], launch["late"][0]}
    assert len(sink.messages) == 3
