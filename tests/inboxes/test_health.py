"""health_score: the documented formula, as a pure function."""

from __future__ import annotations

import itertools

import pytest

from imail.inboxes.health import InboxStats, health_score


def test_a_new_connected_inbox_is_neutral():
    assert health_score("connected") == 70
    assert health_score("connected", InboxStats()) == 70


@pytest.mark.parametrize(
    ("status", "score"), [("connected", 70), ("setup_pending", 35), ("disconnected", 18)]
)
def test_connection_state_scales_the_score(status, score):
    assert health_score(status) == score


def test_a_perfect_inbox_scores_100():
    stats = InboxStats(sent=200, bounced=0, replied=10, warmup_sent=100, warmup_inbox=100)
    assert health_score("connected", stats) == 100


def test_a_terrible_inbox_scores_0():
    stats = InboxStats(sent=200, bounced=20, replied=0, warmup_sent=100, warmup_inbox=40)
    assert health_score("connected", stats) == 0


def test_each_part_follows_its_documented_line():
    # bounce 2.5 % -> 50, reply 1 % -> 20, placement no data -> 70: 0.40·50 + 0.35·70 + 0.25·20 = 49.5 -> 50
    assert health_score("connected", InboxStats(sent=200, bounced=5, replied=2)) == 50
    # reply 2.5 % with no bounces: 0.40·100 + 0.35·70 + 0.25·50 = 77
    assert health_score("connected", InboxStats(sent=200, bounced=0, replied=5)) == 77
    # placement 75 % -> 50: 0.40·70 + 0.35·50 + 0.25·70 = 63
    assert health_score("connected", InboxStats(warmup_sent=100, warmup_inbox=75)) == 63


def test_small_samples_count_as_no_data():
    assert health_score("connected", InboxStats(sent=19, bounced=19)) == 70
    assert health_score("connected", InboxStats(warmup_sent=19, warmup_inbox=0)) == 70
    assert health_score("connected", InboxStats(sent=20, bounced=20)) < 70


def test_more_bounces_never_raise_the_score_and_more_replies_never_lower_it():
    previous = 101
    for bounced in range(30):
        score = health_score("connected", InboxStats(sent=100, bounced=bounced, replied=3))
        assert score <= previous
        previous = score
    previous = -1
    for replied in range(30):
        score = health_score("connected", InboxStats(sent=100, bounced=1, replied=replied))
        assert score >= previous
        previous = score


def test_always_between_0_and_100_even_for_odd_counts():
    values = (0, 1, 19, 20, 50, 100, 1000)
    for sent, bounced, replied, warm, inbox in itertools.product(values, repeat=5):
        for status in ("connected", "setup_pending", "disconnected", "unknown"):
            score = health_score(status, InboxStats(sent, bounced, replied, warm, inbox))
            assert 0 <= score <= 100 and isinstance(score, int)
