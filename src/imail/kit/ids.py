"""Prefixed ULIDs: `cmp_01HZ8K…`, sortable by creation time.

Made here rather than by python-ulid's `ULID()`, which builds an object and encodes it digit by digit: a
sending worker makes four ids per email, so their cost shows in its CPU profile. The same 26-character
Crockford base-32 text, with the same monotonic mode as python-ulid's default generator: within one
millisecond each id is the previous one plus one, so ids made in order sort in order (events of a batch, leads
of an upload) and never repeat in a process."""

from __future__ import annotations

import os
import threading
import time

PREFIXES = frozenset(
    {
        "ws",
        "key",
        "cmp",
        "lead",
        "inb",
        "wh",
        "evt",
        "msg",
        "req",
        "idem",
        "sup",
        "dlv",
        "rpl",
        "rlc",
        "wrm",
        "aud",
        "job",
    }
)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of base-32 digits, indexed by the 10 bits they spell: a ULID is 13 look-ups, not a digit loop.
_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
# A fresh random part has its top bit cleared, so counting up from it within a millisecond never carries into
# the timestamp (that would take 2**79 ids).
_RANDOM_MASK = (1 << 79) - 1

_lock = threading.Lock()
_last_millis = -1
_last_random = 0


def _reserve(count: int) -> tuple[int, int]:
    """A timestamp and the first of `count` consecutive random parts, after every value handed out before."""
    global _last_millis, _last_random
    millis = time.time_ns() // 1_000_000
    with _lock:
        if millis == _last_millis:
            first = _last_random + 1
        else:
            first = int.from_bytes(os.urandom(10), "big") & _RANDOM_MASK
        _last_millis, _last_random = millis, first + count - 1
    return millis, first


def _text(millis: int, randomness: int) -> str:
    # 48 timestamp bits as 10 digits (the top two bits of 50 are zero), then 80 random bits as 16.
    p = _PAIRS
    return (
        p[millis >> 40 & 1023]
        + p[millis >> 30 & 1023]
        + p[millis >> 20 & 1023]
        + p[millis >> 10 & 1023]
        + p[millis & 1023]
        + p[randomness >> 70 & 1023]
        + p[randomness >> 60 & 1023]
        + p[randomness >> 50 & 1023]
        + p[randomness >> 40 & 1023]
        + p[randomness >> 30 & 1023]
        + p[randomness >> 20 & 1023]
        + p[randomness >> 10 & 1023]
        + p[randomness & 1023]
    )


def new_ulid() -> str:
    """A ULID's canonical text (26 characters, upper case)."""
    return _text(*_reserve(1))


def _known(prefix: str) -> None:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")


def new_id(prefix: str) -> str:
    _known(prefix)
    return f"{prefix}_{_text(*_reserve(1))}"


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids at once, in increasing order (bulk creates make thousands per request)."""
    _known(prefix)
    if count <= 0:
        return []
    millis, first = _reserve(count)
    return [f"{prefix}_{_text(millis, randomness)}" for randomness in range(first, first + count)]


def has_prefix(value: str, prefix: str) -> bool:
    """Whether value looks like an id of this type (cheap shape check, no lookup)."""
    head, _, tail = value.partition("_")
    return head == prefix and len(tail) == 26
