"""Due times: delays moved into the send window in the lead's zone, DST-correct, spread, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from imail.sending.schedule import MAX_SPREAD, Window, due_at, next_open

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_inside_the_window_is_due_at_once():
    window = Window.of("Europe/Berlin", WEEKDAYS, "09:00", "17:00")
    moment = utc(2026, 11, 24, 10, 0)  # Tuesday 11:00 in Berlin
    assert next_open(moment, window, "lead_a") == moment


def test_before_opening_waits_for_it_plus_a_spread_offset():
    window = Window.of("America/New_York", WEEKDAYS, "09:00", "17:00")
    moment = utc(2026, 11, 24, 6, 0)  # Tuesday 01:00 in New York
    due = next_open(moment, window, "lead_a")
    opening = utc(2026, 11, 24, 14, 0)  # 09:00 EST
    assert opening <= due < opening + MAX_SPREAD
    assert window.is_open(due)


def test_after_closing_on_friday_waits_for_monday():
    window = Window.of("Europe/London", WEEKDAYS, "09:00", "17:00")
    friday_evening = utc(2026, 11, 27, 18, 0)
    due = next_open(friday_evening, window)
    assert due == utc(2026, 11, 30, 9, 0)


def test_spread_is_stable_per_lead_and_differs_between_leads():
    window = Window.of("UTC", WEEKDAYS, "09:00", "17:00")
    night = utc(2026, 11, 24, 2, 0)
    dues = {next_open(night, window, f"lead_{i}") for i in range(200)}
    assert len(dues) > 150
    assert next_open(night, window, "lead_7") == next_open(night, window, "lead_7")
    assert max(dues) - min(dues) > timedelta(minutes=45)


@pytest.mark.parametrize(
    ("day", "expected_utc_hour"),
    [
        (datetime(2026, 3, 6, tzinfo=UTC), 14),  # Friday before spring forward: EST, 09:00 = 14:00 UTC
        (datetime(2026, 3, 9, tzinfo=UTC), 13),  # Monday after: EDT, 09:00 = 13:00 UTC
        (datetime(2026, 10, 30, tzinfo=UTC), 13),  # Friday before fall back: EDT
        (datetime(2026, 11, 2, tzinfo=UTC), 14),  # Monday after: EST
    ],
)
def test_dst_changes_move_the_utc_opening(day, expected_utc_hour):
    window = Window.of("America/New_York", WEEKDAYS, "09:00", "17:00")
    due = next_open(day.replace(hour=3), window)
    assert due == day.replace(hour=expected_utc_hour)


def test_a_window_opening_inside_the_spring_forward_gap_still_opens():
    window = Window.of("America/New_York", ["sun"], "02:30", "05:00")  # 02:30 does not exist on 2026-03-08
    due = next_open(utc(2026, 3, 8, 0, 0), window)
    assert window.is_open(due)
    assert due.astimezone(window.zone).hour == 3


def test_due_at_adds_the_delay_first():
    window = Window.of("UTC", WEEKDAYS, "09:00", "17:00")
    sent = utc(2026, 11, 23, 10, 0)  # Monday
    assert due_at(sent, timedelta(days=2), window, "lead_a") == utc(2026, 11, 25, 10, 0)
    late = due_at(sent, timedelta(hours=8), window, "lead_a")  # 18:00: closed, next morning
    assert utc(2026, 11, 24, 9, 0) <= late < utc(2026, 11, 24, 10, 0)


def test_a_window_without_days_is_refused():
    with pytest.raises(ValueError):
        next_open(utc(2026, 1, 1), Window.of("UTC", [], "09:00", "17:00"))


def test_bulk_due_times_equal_one_by_one():
    from imail.sending.schedule import due_for_many
    from imail.sending.sequence import window_for

    send_window = {"timezone": "lead", "days": ["mon", "tue"], "start": "09:00", "end": "17:00"}
    leads = [
        (f"lead_{i}", zone)
        for i, zone in enumerate(["Europe/Paris", "Asia/Tokyo", "America/Denver", None] * 25)
    ]
    for previous in (utc(2026, 11, 23, 3, 0), utc(2026, 11, 23, 12, 0), utc(2026, 11, 25, 12, 0)):
        bulk = due_for_many(previous, timedelta(hours=2), lambda zone: window_for(send_window, zone), leads)
        for key, zone in leads:
            assert bulk[key] == due_at(previous, timedelta(hours=2), window_for(send_window, zone), key)
