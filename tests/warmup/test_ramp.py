"""The ramp: pure targets and slots, then simulated days over real SMTP following it exactly up to the
ceiling."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from imail.models.warmup import WarmupDaily
from imail.warmup import ramp
from tests.warmup.conftest import SECRET, Pool

THU = date(2026, 11, 26)


def test_target_grows_by_the_increment_and_stops_at_the_ceiling():
    r = ramp.Ramp(start_volume=3, daily_increment=2, ceiling=9)
    assert [ramp.target(r, THU, THU + timedelta(days=d), daily_limit=100) for d in range(6)] == [
        3,
        5,
        7,
        9,
        9,
        9,
    ]
    assert ramp.target(r, THU, date(2026, 11, 25), daily_limit=100) == 0  # before the start
    assert ramp.target(r, THU, date(2026, 11, 29), daily_limit=6) == 6  # never above the inbox's daily limit


def test_weekdays_only_skips_weekends_without_counting_them():
    r = ramp.Ramp(start_volume=2, daily_increment=3, ceiling=10, weekdays_only=True)
    days = [THU + timedelta(days=d) for d in range(7)]  # Thu … Wed
    assert [ramp.target(r, THU, d, daily_limit=100) for d in days] == [2, 5, 0, 0, 8, 10, 10]


def test_slots_spread_over_the_window_and_all_pass_by_its_end():
    window = ramp.Window.parse("08:00-18:00")
    day = datetime(2026, 11, 26, tzinfo=UTC)
    counts = [ramp.due_by(window, day.replace(hour=h), 10, "inb_x") for h in range(24)]
    assert counts[:8] == [0] * 8 and counts[18:] == [10] * 6
    assert counts == sorted(counts) and 3 <= counts[12] <= 6
    slots = [ramp.slot_time(window, day.date(), i, 10, "inb_x") for i in range(10)]
    assert all(day.replace(hour=8) <= s < day.replace(hour=18) for s in slots) and slots == sorted(slots)
    assert ramp.due_by(window, slots[4], 10, "inb_x") == 5  # a slot is due at its own time


async def test_sends_per_day_follow_the_ramp_exactly_and_stop_at_the_ceiling(pool: Pool):
    a = await pool.inbox({"start_volume": 3, "daily_increment": 2, "ceiling": 9, "reply_rate": 0})
    b = await pool.inbox(
        {"start_volume": 2, "daily_increment": 3, "ceiling": 10, "weekdays_only": True, "reply_rate": 0}
    )
    for day in range(7):  # Thursday … Wednesday
        for hour in (9, 13, 18):  # part of the day's slots, then the rest at the window's end
            pool.clock.at(day, hour)
            await pool.send()
        inbox_a = await pool.get(a)
        assert inbox_a["warmup"]["today"]["sent"] == inbox_a["warmup"]["today"]["target"]

    per_day = Counter((at.date(), m.envelope_from) for at, m in pool.router.warmup())
    days = [THU + timedelta(days=d) for d in range(7)]
    assert [per_day[(d, pool.email(a))] for d in days] == [3, 5, 7, 9, 9, 9, 9]
    assert [per_day[(d, pool.email(b))] for d in days] == [2, 5, 0, 0, 8, 10, 10]
    assert (await pool.get(b))["warmup"]["today"] == {
        "day": "2026-12-02",
        "target": 10,
        "sent": 10,
        "replies_sent": 0,
    }

    # Sent over the real SMTP transport between pool members, marked and tagged; the sender's daily rows
    # agree.
    sent = pool.router.warmup()
    assert {m.envelope_to[0] for _, m in sent if m.envelope_from == pool.email(a)} == {pool.email(b)}
    for _, received in sent:
        message = received.message
        assert message["X-Imail-Warmup"] == SECRET and "WTAG42" in message.get_payload(decode=True).decode()
        assert received.login == received.envelope_from  # each inbox logged in to its own SMTP account
    rows = await pool.rows(WarmupDaily, WarmupDaily.inbox_id == a)
    assert sorted((r.day, r.sent) for r in rows) == [
        (d, n) for d, n in zip(days, [3, 5, 7, 9, 9, 9, 9], strict=True)
    ]


async def test_sends_wait_for_their_slot_within_the_window(pool: Pool):
    a = await pool.inbox({"start_volume": 10, "ceiling": 10, "reply_rate": 0})
    await pool.inbox({"start_volume": 10, "ceiling": 10, "reply_rate": 0})
    pool.clock.at(0, 7)
    await pool.send()
    assert pool.router.warmup() == []  # before the window opens
    pool.clock.at(0, 13)
    await pool.send()
    midday = (await pool.get(a))["warmup"]["today"]["sent"]
    assert 4 <= midday <= 6
    pool.clock.at(0, 18)
    await pool.send()
    assert (await pool.get(a))["warmup"]["today"]["sent"] == 10
