"""The one check for text that cannot be stored, applied wherever text enters (JSON bodies, query strings, URL
paths, multipart form fields, CSV cells): PostgreSQL text cannot hold U+0000, and a lone UTF-16 surrogate
(U+D800–U+DFFF, which JSON's `\\ud800` escape can produce) has no UTF-8 encoding, so neither can be written,
logged or sent on. Refusing both up front, on SQLite too, makes both backends answer alike: a 400, never a
500 half-way through a write."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

UNSTORABLE = "may not contain NUL (U+0000) or unpaired surrogate (U+D800–U+DFFF) characters"


def unstorable(text: str) -> bool:
    """Whether `text` holds a character no column can store."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable_message(field: str | None) -> str:
    return f"{field}: {UNSTORABLE}" if field else f"Text {UNSTORABLE}"


def printable_field(name: str) -> str:
    """A field name that can itself be echoed back in an error (its bad characters dropped)."""
    return "".join(ch for ch in name if not unstorable(ch))


def storable(value: str) -> str:
    """A pydantic after-validator: the value, or a ValueError naming the rule (for fields parsed outside the
    JSON body check, such as multipart form fields)."""
    if unstorable(value):
        raise ValueError(UNSTORABLE)
    return value


StoredText = Annotated[str, AfterValidator(storable)]
