"""The rows a claim locks besides the due states: today's send counters, created only when missing and written
back only where they changed; and PostgreSQL planning the claim's array queries for their own arrays."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import select, text

from imail.db import Database
from imail.models.sending import SendCounter
from imail.sending.repository import SendQueue

DAY = date(2026, 11, 23)


async def counts(database: Database) -> dict[tuple[str, date], int]:
    async with database.transaction() as session:
        rows = await session.execute(select(SendCounter.scope_id, SendCounter.day, SendCounter.sent))
        return {(scope, day): sent for scope, day, sent in rows}


async def test_counters_are_created_only_when_missing_and_only_their_changes_are_written(database: Database):
    async with database.transaction() as session:
        session.add_all(
            [
                SendCounter(scope_id="cmp_kept", day=DAY, sent=3),
                SendCounter(scope_id="inb_yesterday", day=date(2026, 11, 22), sent=7),
            ]
        )

    async with database.transaction() as session:
        queue = SendQueue(session)
        counters = await queue.lock_counters(["inb_yesterday", "cmp_kept", "inb_new", "cmp_kept"], DAY)
        assert {scope: c.sent for scope, c in counters.items()} == {
            "cmp_kept": 3,
            "inb_new": 0,
            "inb_yesterday": 0,  # yesterday's count is another row
        }
        counters["inb_new"].sent += 2
        counters["inb_yesterday"].sent += 1
        await queue.save_counters(DAY, counters.values())

    assert await counts(database) == {
        ("cmp_kept", DAY): 3,
        ("inb_new", DAY): 2,
        ("inb_yesterday", DAY): 1,
        ("inb_yesterday", date(2026, 11, 22)): 7,
    }

    # A second claim finds them all and changes one.
    async with database.transaction() as session:
        queue = SendQueue(session)
        counters = await queue.lock_counters(["cmp_kept", "inb_new"], DAY)
        counters["cmp_kept"].sent += 1
        await queue.save_counters(DAY, counters.values())
    assert (await counts(database))[("cmp_kept", DAY)] == 4
    assert (await counts(database))[("inb_new", DAY)] == 2


async def test_no_counters_asked_for_none_locked(database: Database):
    async with database.transaction() as session:
        assert await SendQueue(session).lock_counters([], DAY) == {}
    assert await counts(database) == {}


async def test_postgresql_plans_each_statement_for_its_own_parameters(postgres_url: str, database: Database):
    """The claim's queries take arrays of a few to thousands of ids; a generic plan, made for a small array
    and kept, scanned whole tables once per element (bench/RESULTS.md, "Steady sending"). Every pooled
    connection, and the marks' pinned one, plans each statement for its parameters."""
    async with database.transaction() as session:
        assert (await session.execute(text("SHOW plan_cache_mode"))).scalar() == "force_custom_plan"
    async with database.pinned() as connection:
        assert await connection.fetchval("SHOW plan_cache_mode") == "force_custom_plan"


@pytest.mark.parametrize("scopes", [["cmp_a"], ["inb_b", "cmp_a"]])
async def test_locked_counters_come_in_scope_order(database: Database, scopes: list[str]):
    """One lock order for every claim and resolver (scope id order): two transactions never wait on each
    other's counters in a cycle."""
    async with database.transaction() as session:
        counters = await SendQueue(session).lock_counters(scopes, DAY)
    assert list(counters) == sorted(scopes)


async def test_a_counter_another_claim_is_creating_is_waited_for_not_created_twice(
    postgres_url: str, database: Database
):
    """Two claims find the same counter missing: the second's insert waits for the first's transaction, does
    nothing, and locks the row the first made, with the first's count."""
    first = database.sessions()
    await first.begin()
    try:
        queue = SendQueue(first)
        counters = await queue.lock_counters(["inb_new"], DAY)
        counters["inb_new"].sent += 1
        await queue.save_counters(DAY, counters.values())

        async def second_claim() -> int:
            async with database.transaction() as session:
                return (await SendQueue(session).lock_counters(["inb_new"], DAY))["inb_new"].sent

        waiting = asyncio.create_task(second_claim())
        # Until the second claim waits on the first's row (the event, not a delay).
        async with database.engine.connect() as watcher:
            for _ in range(500):
                blocked = (
                    await watcher.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock'"
                        )
                    )
                ).scalar()
                if blocked or waiting.done():
                    break
                await asyncio.sleep(0.01)
        assert not waiting.done()
        await first.commit()
    finally:
        await first.close()
    assert await waiting == 1
    assert await counts(database) == {("inb_new", DAY): 1}
