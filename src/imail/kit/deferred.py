"""Writes a block of work collects and makes once, when the block ends (events, suppressions of a batch)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


@asynccontextmanager
async def collecting(session: AsyncSession, key: str, make: Callable[[], T]) -> AsyncIterator[T | None]:
    """Makes `session.info[key]` a new container (`make()`) for the block and yields it; code inside the block
    adds to it through `session.info.get(key)`, and the caller writes what it holds after the block. Inside an
    outer block with the same key, yields None: the outer block's container collects, and the outer caller
    writes. When the block raises, the container is dropped with the exception (the transaction rolls back, so
    nothing is owed)."""
    if key in session.info:
        yield None
        return
    container = make()
    session.info[key] = container
    try:
        yield container
    finally:
        session.info.pop(key, None)
