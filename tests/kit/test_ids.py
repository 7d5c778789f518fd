"""Ids: python-ulid's text for the same value, the creation time in the first ten digits, and strictly
increasing in the order they were made (one at a time, in batches, or both mixed)."""

from __future__ import annotations

import random
import time

import pytest
from ulid import ULID

from imail.kit.ids import _text, has_prefix, new_id, new_ids, new_ulid


def test_the_text_is_python_ulids_for_the_same_value():
    rng = random.Random(7)
    for _ in range(2000):
        millis, randomness = rng.getrandbits(48), rng.getrandbits(80)
        assert _text(millis, randomness) == str(ULID.from_int(millis << 80 | randomness))
    assert _text(0, 0) == "0" * 26 and _text(2**48 - 1, 2**80 - 1) == "7" + "Z" * 25


def test_an_id_carries_its_creation_time_and_its_prefix():
    before = time.time_ns() // 1_000_000
    made = new_id("msg")
    after = time.time_ns() // 1_000_000
    prefix, _, raw = made.partition("_")
    assert prefix == "msg" and has_prefix(made, "msg") and not has_prefix(made, "evt")
    assert before <= ULID.from_str(raw).milliseconds <= after
    assert len(new_ulid()) == 26


def test_ids_made_in_order_sort_in_order_and_never_repeat():
    made = []
    for n in range(3000):  # spans many milliseconds, and many ids within each
        made.append(new_id("evt"))
        if n % 100 == 0:
            made += new_ids("evt", 50)
    assert made == sorted(made) and len(set(made)) == len(made)


def test_batches_are_sorted_unique_and_empty_when_asked_for_none():
    before = time.time_ns() // 1_000_000
    ids = new_ids("lead", 5000)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 5000 and ids == sorted(ids)
    assert all(before <= ULID.from_str(i.partition("_")[2]).milliseconds <= after for i in (ids[0], ids[-1]))
    assert new_ids("lead", 0) == []


def test_an_unknown_prefix_is_refused():
    with pytest.raises(ValueError):
        new_id("nope")
    with pytest.raises(ValueError):
        new_ids("nope", 3)
