"""Inbox rotation within one claim: least recently used with room and no gap running, in O(log n) per pick."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from imail.sending.rotation import NoInbox, Rotation, Shortage

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def rotation(specs: dict[str, dict], limits: dict[str, int] | None = None) -> Rotation:
    inboxes = {
        i: SimpleNamespace(
            id=i,
            status=s.get("status", "connected"),
            livemode=s.get("livemode", True),
            daily_limit=s.get("limit", 100),
            sending_paused_at=s.get("paused"),
            send_backoff_until=s.get("backoff"),
        )
        for i, s in specs.items()
    }
    counters = {i: SimpleNamespace(sent=s.get("sent", 0)) for i, s in specs.items()}
    pacing = {
        i: SimpleNamespace(last_sent_at=s.get("last"), next_send_at=s.get("next")) for i, s in specs.items()
    }
    return Rotation(NOW, inboxes, counters, pacing, limits or {})


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
    assert picks(r, 4) == ["a", "b", "a", "gap_running"]
    shortage = r.choose("campaign", ["a", "b", "c"], True)
    assert shortage == NoInbox(Shortage.gap_running, NOW + timedelta(minutes=3))


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
