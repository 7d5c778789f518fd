"""`among`: one SQL text for any number of values on PostgreSQL, the right rows on every database."""

from __future__ import annotations

from sqlalchemy import select

from imail.db import Database
from imail.kit.ids import new_id
from imail.kit.sql import among
from imail.models import Workspace


async def test_among_finds_exactly_the_given_rows_whatever_the_list_length(database: Database):
    async with database.transaction() as session:
        ids = [new_id("ws") for _ in range(6)]
        session.add_all(Workspace(id=i, name=f"w{n}", tier="free") for n, i in enumerate(ids))
    async with database.transaction() as session:
        # The same statement shape with different values: a cached compilation must take each call's values.
        for wanted in ([ids[0]], ids[1:3], ids[2:6], [], ["ws_missing"], [ids[5], "ws_missing"]):
            found = (await session.execute(select(Workspace.id).where(among(Workspace.id, wanted)))).scalars().all()
            assert sorted(found) == sorted(i for i in wanted if i in ids)


def test_among_is_one_array_parameter_on_postgresql_and_an_in_list_elsewhere():
    from sqlalchemy.dialects import postgresql, sqlite

    stmt = select(Workspace.id).where(among(Workspace.id, ["a", "b", "c"]))
    assert "= ANY (" in str(stmt.compile(dialect=postgresql.asyncpg.dialect()))
    assert " IN (" in str(stmt.compile(dialect=sqlite.dialect()))
