"""Inbox rotation within one claim: least recently used with room and no gap running, in O(log n) per pick."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from imail.sending.rotation import Bookings, NoInbox, Rotation, Shortage

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def rotation(
    specs: dict[str, dict],
    limits: dict[str, int] | None = None,
    bookings: Bookings | None = None,
    now: datetime = NOW,
) -> Rotation:
    inboxes = {
        i: SimpleNamespace(
            id=i,
            status=s.get("status", "connected"),
            livemode=s.get("livemode", True),
            daily_limit=s.get("limit", 100),
            sending_paused_at=s.get("paused"),
            send_backoff_until=s.get("backoff"),
            sending_gap_minutes=s.get("gap", 10),
        )
        for i, s in specs.items()
    }
    counters = {i: SimpleNamespace(sent=s.get("sent", 0)) for i, s in specs.items()}
    pacing = {
        i: SimpleNamespace(last_sent_at=s.get("last"), next_send_at=s.get("next")) for i, s in specs.items()
    }
    return Rotation(now, inboxes, counters, pacing, limits or {}, bookings)


def picks(
    r: Rotation, n: int, group: str = "campaign", ids: list[str] | None = None, gap: timedelta = timedelta(0)
) -> list[str]:
    chosen = []
    for _ in range(n):
        inbox = r.choose(group, ids or sorted(r.inboxes), True)
        if isinstance(inbox, NoInbox):
            chosen.append(inbox.shortage.name)
            continue
        chosen.append(inbox.id)
        r.sent(inbox, NOW + gap)
    return chosen


def test_least_recently_used_first_then_fewest_sends_today():
    r = rotation(
        {
            "a": {"last": NOW - timedelta(minutes=5), "sent": 1},
            "b": {"last": NOW - timedelta(hours=1), "sent": 9},
            "c": {"last": None, "sent": 3},
        }
    )
    # c never sent, then b (an hour ago), then a; after that all share NOW and today's count
    # decides (then the id).
    assert picks(r, 7) == ["c", "b", "a", "a", "a", "a", "c"]


def test_limits_warmup_ramps_and_gaps_take_inboxes_out_for_the_claim():
    r = rotation(
        {"a": {"limit": 2}, "b": {"limit": 100}, "c": {"next": NOW + timedelta(minutes=3)}}, limits={"b": 1}
    )
    assert picks(r, 4) == ["a", "b", "a", "gap_running"]  # the fourth is told c's opening, NOW + 3 min
    shortage = r.choose("campaign", ["a", "b", "c"], True)
    # c's opening is promised: the next waiting send comes back a gap later (see the Bookings tests below)
    assert shortage == NoInbox(Shortage.gap_running, NOW + timedelta(minutes=13))


def test_a_gap_after_each_send_spreads_one_send_per_inbox():
    r = rotation({i: {} for i in "abc"})
    assert picks(r, 4, gap=timedelta(minutes=10)) == ["a", "b", "c", "gap_running"]


def test_all_full_and_none_connected_are_told_apart():
    assert picks(rotation({"a": {"sent": 5, "limit": 5}}), 1) == ["limits_reached"]
    assert picks(rotation({"a": {"status": "disconnected"}, "b": {"livemode": False}}), 1) == ["no_inbox"]


def test_a_follow_up_from_an_inbox_makes_it_less_fresh_for_step_one():
    r = rotation({"a": {"last": NOW - timedelta(hours=2)}, "b": {"last": NOW - timedelta(hours=1)}})
    assert picks(r, 1, group="thread-a", ids=["a"]) == ["a"]  # a follow-up of a thread started from a
    assert picks(r, 2) == ["b", "a"]  # step 1: a was just used, so b goes first


def test_an_inbox_whose_sending_is_paused_is_never_chosen():
    r = rotation({"a": {"paused": NOW}, "b": {}})
    assert picks(r, 2) == ["b", "b"]
    alone = rotation({"a": {"paused": NOW}})
    assert alone.choose("campaign", ["a"], True) == NoInbox(Shortage.no_inbox)


def test_an_inbox_its_server_throttled_waits_out_the_backoff():
    r = rotation({"a": {"backoff": NOW + timedelta(minutes=4), "next": NOW + timedelta(minutes=1)}, "b": {}})
    assert picks(r, 2) == ["b", "b"]
    throttled = rotation({"a": {"backoff": NOW + timedelta(minutes=4), "next": NOW + timedelta(minutes=1)}})
    # the later of the gap and the backoff
    assert throttled.choose("campaign", ["a"], True) == NoInbox(
        Shortage.gap_running, NOW + timedelta(minutes=4)
    )
    assert picks(rotation({"a": {"backoff": NOW - timedelta(seconds=1)}}), 1) == ["a"]


def waits(r: Rotation, n: int, group: str = "campaign") -> list[datetime | None]:
    """When each of n sends that find every inbox inside its gap is told to come back."""
    told = []
    for _ in range(n):
        shortage = r.choose(group, sorted(r.inboxes), True)
        assert isinstance(shortage, NoInbox) and shortage.shortage is Shortage.gap_running
        told.append(shortage.ready_at)
    return told


def test_waiting_sends_are_spread_over_the_openings_not_all_told_the_first():
    minute = timedelta(minutes=1)
    specs = {"a": {"next": NOW + 3 * minute}, "b": {"next": NOW + 7 * minute}}
    # Each inbox's next opening once, then one slot per the pair's pace (two inboxes with a 10-minute gap:
    # one send every 5 minutes), after the last opening.
    assert waits(rotation(specs), 5) == [NOW + m * minute for m in (3, 7, 12, 17, 22)]


def test_the_promises_hold_from_one_claim_to_the_next():
    minute = timedelta(minutes=1)
    bookings = Bookings()
    specs = {"a": {"next": NOW + 3 * minute}, "b": {"next": NOW + 7 * minute}}
    assert waits(rotation(specs, bookings=bookings), 3) == [
        NOW + 3 * minute,
        NOW + 7 * minute,
        NOW + 12 * minute,
    ]
    # The next claim, a minute later, carries on after what the first promised.
    later = NOW + minute
    assert waits(rotation(specs, bookings=bookings, now=later), 2) == [NOW + 17 * minute, NOW + 22 * minute]
    # Once a sends, its new opening is the first free one again; promises past are forgotten.
    sent = {"a": {"next": NOW + 14 * minute}, "b": {"next": NOW + 7 * minute}}
    assert waits(rotation(sent, bookings=bookings, now=NOW + 4 * minute), 2) == [
        NOW + 14 * minute,
        NOW + 27 * minute,
    ]
    assert NOW + 3 * minute not in {when for _, when in bookings.promised[("campaign", True)]}


def test_without_a_gap_every_waiting_send_is_told_the_first_opening():
    # An inbox held only by its server's backoff (a 421) has no pace to spread over.
    r = rotation({"a": {"backoff": NOW + timedelta(minutes=4), "gap": 0}})
    assert waits(r, 3) == [NOW + timedelta(minutes=4)] * 3


def test_what_a_group_can_take_now_one_send_per_inbox_with_a_gap_all_its_room_without():
    r = rotation(
        {
            "a": {"gap": 10},
            "b": {"gap": 0, "limit": 30, "sent": 10},
            "c": {"gap": 10, "next": NOW + timedelta(minutes=2)},
            "d": {"gap": 10, "limit": 5, "sent": 5},
        }
    )
    # a: one send, then its gap; b: its 20 left today; c: inside its gap; d: full
    assert r.count("campaign", ["a", "b", "c", "d"], True) == (21, 3)
