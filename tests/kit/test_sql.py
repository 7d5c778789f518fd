"""`among`: one SQL text for any number of values on PostgreSQL, the right rows on every database; statements
built once with `among(column, bindparam(name))`; `DriverStatement`'s text and argument order."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, update

from imail.db import Database
from imail.kit.ids import new_id
from imail.kit.sql import DriverStatement, among
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


async def test_a_statement_built_once_takes_its_values_at_execution(database: Database):
    async with database.transaction() as session:
        ids = [new_id("ws") for _ in range(4)]
        session.add_all(Workspace(id=i, name=f"w{n}", tier="free") for n, i in enumerate(ids))
    stmt = select(Workspace.id).where(among(Workspace.id, bindparam("wanted")))
    async with database.transaction() as session:
        for wanted in (ids[:1], ids[1:4], ["ws_missing", ids[2]]):
            found = (await session.execute(stmt, {"wanted": wanted})).scalars().all()
            assert sorted(found) == sorted(i for i in wanted if i in ids)


def test_a_driver_statement_gives_its_arguments_in_the_texts_order():
    from sqlalchemy.dialects import postgresql

    table = Workspace.__table__
    stmt = (update(table).where(among(table.c.id, bindparam("ids")), table.c.tier == "free")
            .values(name=bindparam("name"), tier="surge", updated_at=bindparam("now")))
    compiled = DriverStatement(stmt, postgresql.asyncpg.dialect())
    assert compiled.sql == ("UPDATE workspaces SET name=$1::VARCHAR, tier=$2::VARCHAR, updated_at=$3::TIMESTAMP "
                            "WITH TIME ZONE WHERE workspaces.id = ANY ($4::VARCHAR(40)[]) AND workspaces.tier = $5::VARCHAR")
    assert compiled.args(ids=["ws_a"], name="Acme", now=None) == ["Acme", "surge", None, ["ws_a"], "free"]
    with pytest.raises(TypeError, match="no value for ids, now"):
        compiled.args(name="Acme")


def test_a_driver_statement_refuses_columns_sqlalchemy_would_fill_in():
    from sqlalchemy.dialects import postgresql

    table = Workspace.__table__  # updated_at has onupdate=utcnow, computed by SQLAlchemy at each execution
    with pytest.raises(ValueError, match="updated_at"):
        DriverStatement(update(table).where(table.c.id == bindparam("id")).values(name="x"), postgresql.asyncpg.dialect())
