"""Lead tags (pure): free labels, normalized so that `VIP`, ` vip ` and `Vip` are one tag.

A tag is trimmed, its inner runs of white space become one space, and it is lower-cased; 1–64 characters,
printable, without `,` or `;` (the separators of a CSV `tags` cell); at most 30 per lead. Repeats collapse."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_TAG_LENGTH = 64
MAX_TAGS = 30
SEPARATORS = (",", ";")


class TagInvalid(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def normalize_tag(value: Any, field: str = "tags") -> str:
    if not isinstance(value, str):
        raise TagInvalid(field, f"{field}: each tag must be a string")
    tag = " ".join(value.split()).lower()
    if not tag:
        raise TagInvalid(field, f"{field}: a tag cannot be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise TagInvalid(field, f"{field}: a tag has at most {MAX_TAG_LENGTH} characters ({tag[:20]!r}…)")
    if any(sep in tag for sep in SEPARATORS) or not tag.isprintable():
        raise TagInvalid(field, f"{field}: {tag!r}: a tag cannot hold `,`, `;` or control characters")
    return tag


def normalize_tags(values: Any, field: str = "tags", limit: int | None = MAX_TAGS) -> list[str]:
    """The tags normalized, repeats dropped, sorted."""
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise TagInvalid(field, f"{field}: give a list of strings")
    tags = sorted({normalize_tag(value, field) for value in values})
    if limit is not None and len(tags) > limit:
        raise TagInvalid(field, f"{field}: at most {limit} tags per lead; got {len(tags)}")
    return tags


def split_cell(cell: str, field: str = "tags") -> list[str]:
    """A CSV `tags` cell: tags separated by `;` or `,` (either, or both), empty parts ignored."""
    parts = [part for chunk in cell.split(";") for part in chunk.split(",") if part.strip()]
    return normalize_tags(parts, field)
