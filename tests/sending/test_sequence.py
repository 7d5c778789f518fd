"""Step selection: branches on behaviour, weighted variants, threading subjects — no database."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from imail.sending.sequence import (
    END,
    Behaviour,
    after_branches,
    choose_variant,
    content,
    reply_subject,
    step_delay,
    window_for,
)

STEPS = [
    {
        "subject": "Hi",
        "body": "b1",
        "branches": [{"condition": "clicked", "next_step": 4}, {"condition": "not_opened", "next_step": 3}],
    },
    {"subject": None, "body": "b2", "delay": {"amount": 2, "unit": "days"}},
    {
        "subject": None,
        "body": "b3",
        "delay": {"amount": 3, "unit": "hours"},
        "branches": [{"condition": "opened", "next_step": None}],
    },
    {"subject": "Last", "body": "b4"},
]


def test_branches_pick_the_first_condition_that_holds():
    assert after_branches(STEPS, 0, Behaviour(opened=True, clicked=True)) == 3
    assert after_branches(STEPS, 0, Behaviour(opened=False, clicked=False)) == 2
    assert after_branches(STEPS, 0, Behaviour(opened=True, clicked=False)) == 1


def test_a_branch_may_end_the_sequence_and_the_last_step_ends_it():
    assert after_branches(STEPS, 2, Behaviour(opened=True, clicked=False)) == END
    assert after_branches(STEPS, 2, Behaviour(opened=False, clicked=False)) == 3
    assert after_branches(STEPS, 3, Behaviour(opened=False, clicked=False)) == END


def test_delays():
    assert step_delay(STEPS[1]) == timedelta(days=2)
    assert step_delay(STEPS[2]) == timedelta(hours=3)
    assert step_delay(STEPS[0]) == timedelta(0)


def test_variants_follow_their_weights():
    step = {
        "subject": "s",
        "body": "b",
        "variants": [{"label": "A", "weight": 3}, {"label": "B", "weight": 1, "subject": "s2"}],
    }
    rng = random.Random(7)
    counts = Counter(choose_variant(step, rng)["label"] for _ in range(4000))
    assert 2800 < counts["A"] < 3200
    assert content(step, {"label": "B", "subject": "s2", "body": None}) == ("s2", "b")
    assert choose_variant({"body": "b"}, rng) is None


def test_reply_subjects_and_windows():
    assert reply_subject("Quick question") == "Re: Quick question"
    assert reply_subject("RE: x") == "RE: x"
    window = window_for({"timezone": "lead", "days": ["mon"], "start": "09:00", "end": "24:00"}, "Asia/Tokyo")
    assert str(window.zone) == "Asia/Tokyo" and window.end.hour == 23
    assert str(window_for({"timezone": "Europe/Paris"}, "Asia/Tokyo").zone) == "Europe/Paris"
