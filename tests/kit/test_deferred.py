"""`collecting`: the outermost block owns the container, nested blocks add to it, and a block that fails
leaves nothing behind for the next one."""

from __future__ import annotations

import pytest

from imail.db import Database
from imail.kit.deferred import collecting


async def test_the_outer_block_collects_what_nested_blocks_add(database: Database):
    async with database.transaction() as session:
        async with collecting(session, "k", list) as outer:
            session.info["k"].append(1)
            async with collecting(session, "k", list) as inner:
                assert inner is None
                session.info["k"].append(2)
            assert session.info["k"] is outer
        assert outer == [1, 2] and "k" not in session.info


async def test_a_failed_block_drops_its_container(database: Database):
    async with database.transaction() as session:
        with pytest.raises(RuntimeError):
            async with collecting(session, "k", list):
                session.info["k"].append(1)
                raise RuntimeError("the batch failed")
        assert "k" not in session.info
        async with collecting(session, "k", list) as fresh:
            assert fresh == []
