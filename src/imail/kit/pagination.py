"""Keyset pagination: `?limit=&cursor=` over a table ordered by its ULID primary key, newest first.

Because ULIDs sort by creation time and the walk goes strictly downward from the last id seen, rows
inserted while a client pages land above its position and are never repeated or skipped.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, TypeAdapter
from starlette.responses import Response

from imail.errors import InvalidField
from imail.kit.schemas import ResponseModel

T = TypeVar("T")

CURSOR_PREFIX = "cur_"


class Pagination(BaseModel):
    next_cursor: str | None
    has_more: bool


class Page(ResponseModel, Generic[T]):
    """The contract's list body: `{"data": [...], "pagination": {...}}`."""

    data: list[T]
    pagination: Pagination

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        return f"{params[0].__name__}List"


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    after_id: str | None


def encode_cursor(last_id: str) -> str:
    return CURSOR_PREFIX + base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    if not cursor.startswith(CURSOR_PREFIX):
        raise InvalidField(
            "cursor is not one this API issued; pass next_cursor from the previous page", "cursor"
        )
    raw = cursor[len(CURSOR_PREFIX) :]
    try:
        value = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidField("cursor is malformed; pass next_cursor from the previous page", "cursor") from None
    head, _, tail = value.partition("_")
    if not head or len(tail) != 26 or not tail.isalnum():
        raise InvalidField("cursor is malformed; pass next_cursor from the previous page", "cursor")
    return value


async def page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1–100.")] = 25,
    cursor: Annotated[str | None, Query(description="`next_cursor` from the previous page.")] = None,
) -> PageParams:
    return PageParams(limit=limit, after_id=decode_cursor(cursor) if cursor else None)


_pages: dict[type[BaseModel], TypeAdapter[Any]] = {}


def build_page(rows: list[Any], params: PageParams, item: type[BaseModel]) -> Response:
    """Turn `limit + 1` rows fetched by a repository (ORM objects, column rows or dicts) into the contract's
    page body, rendered here in one pass: the route's `response_model=Page[item]` documents it, and FastAPI
    sends a returned Response as it is instead of validating and serialising the page a second time."""
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(last["id"] if isinstance(last, dict) else last.id)
    body = {"data": rows, "pagination": {"next_cursor": next_cursor, "has_more": has_more}}
    adapter = _pages.get(item)
    if adapter is None:
        adapter = _pages[item] = TypeAdapter(Page[item])  # type: ignore[valid-type]
    # by_alias as FastAPI renders response models, so the bytes equal what the route would have sent.
    content = adapter.dump_json(adapter.validate_python(body, from_attributes=True), by_alias=True)
    return Response(content, media_type="application/json")
