"""Prefixed ULIDs: `cmp_01HZ8K…`, sortable by creation time."""

from __future__ import annotations

from ulid import ULID

PREFIXES = frozenset({"ws", "key", "cmp", "lead", "inb", "wh", "evt", "msg", "req", "idem", "sup", "dlv", "rpl", "wrm"})


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{ULID()}"


def has_prefix(value: str, prefix: str) -> bool:
    """Whether value looks like an id of this type (cheap shape check, no lookup)."""
    head, _, tail = value.partition("_")
    return head == prefix and len(tail) == 26
