"""`among`: one SQL text for any number of values on PostgreSQL, the right rows on every database; statements
built once with `among(column, bindparam(name))`; `DriverStatement`'s text and argument order; `insert_rows`
and `update_rows`: the same rows as an executemany on every database, in one statement on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, update

from imail.db import Database
from imail.kit.clock import utcnow
from imail.kit.ids import new_id
from imail.kit.sql import DriverStatement, among, insert_rows, update_rows
from imail.models import Event, Workspace


async def test_among_finds_exactly_the_given_rows_whatever_the_list_length(database: Database):
    async with database.transaction() as session:
        ids = [new_id("ws") for _ in range(6)]
        session.add_all(Workspace(id=i, name=f"w{n}", tier="free") for n, i in enumerate(ids))
    async with database.transaction() as session:
        # The same statement shape with different values: a cached compilation must take each call's values.
        for wanted in ([ids[0]], ids[1:3], ids[2:6], [], ["ws_missing"], [ids[5], "ws_missing"]):
            found = (
                (await session.execute(select(Workspace.id).where(among(Workspace.id, wanted))))
                .scalars()
                .all()
            )
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
    stmt = (
        update(table)
        .where(among(table.c.id, bindparam("ids")), table.c.tier == "free")
        .values(name=bindparam("name"), tier="surge", updated_at=bindparam("now"))
    )
    compiled = DriverStatement(stmt, postgresql.asyncpg.dialect())
    assert compiled.sql == (
        "UPDATE workspaces SET name=$1::VARCHAR, tier=$2::VARCHAR, updated_at=$3::TIMESTAMP "
        "WITH TIME ZONE WHERE workspaces.id = ANY ($4::VARCHAR(40)[]) AND workspaces.tier = $5::VARCHAR"
    )
    assert compiled.args(ids=["ws_a"], name="Acme", now=None) == ["Acme", "surge", None, ["ws_a"], "free"]
    with pytest.raises(TypeError, match="no value for ids, now"):
        compiled.args(name="Acme")


def test_a_driver_statement_refuses_columns_sqlalchemy_would_fill_in():
    from sqlalchemy.dialects import postgresql

    table = Workspace.__table__  # updated_at has onupdate=utcnow, computed by SQLAlchemy at each execution
    with pytest.raises(ValueError, match="updated_at"):
        DriverStatement(
            update(table).where(table.c.id == bindparam("id")).values(name="x"), postgresql.asyncpg.dialect()
        )


async def _events(database: Database) -> dict[str, tuple]:
    table = Event.__table__
    async with database.transaction() as session:
        rows = await session.execute(select(table.c.id, table.c.type, table.c.workspace_id, table.c.data))
        return {row.id: tuple(row[1:]) for row in rows}


async def test_insert_rows_writes_every_row_with_its_own_values_json_included(database: Database):
    now = utcnow()
    async with database.transaction() as session:
        ws = new_id("ws")
        session.add(Workspace(id=ws, name="w", tier="free"))
        await session.flush()
        rows = [
            {
                "id": f"evt_{n}",
                "workspace_id": ws,
                "livemode": n % 2 == 0,
                "type": f"t{n}",
                "created_at": now,
                "data": {"n": n, "nested": [n, "é"], "none": None},
            }
            for n in range(5)
        ]
        await insert_rows(session, Event.__table__, rows)
        await insert_rows(session, Event.__table__, [])
    assert await _events(database) == {
        f"evt_{n}": (f"t{n}", ws, {"n": n, "nested": [n, "é"], "none": None}) for n in range(5)
    }


async def test_update_rows_sets_each_rows_columns_only_where_the_conditions_hold(database: Database):
    now = utcnow()
    table = Event.__table__
    async with database.transaction() as session:
        ws, other = new_id("ws"), new_id("ws")
        session.add_all([Workspace(id=ws, name="w", tier="free"), Workspace(id=other, name="o", tier="free")])
        await session.flush()
        await insert_rows(
            session,
            table,
            [
                {
                    "id": f"evt_{n}",
                    "workspace_id": ws,
                    "livemode": n != 2,
                    "type": "old",
                    "created_at": now,
                    "data": {},
                }
                for n in range(4)
            ],
        )
    async with database.transaction() as session:
        await update_rows(
            session,
            table,
            "id",
            [
                {"id": "evt_0", "type": "zero", "data": {"v": 0}},
                {"id": "evt_2", "type": "two", "data": {"v": 2}},
                {"id": "evt_3", "type": "three", "data": {"v": 3}},
                {"id": "evt_missing", "type": "x", "data": {}},
            ],
            table.c.livemode.is_(True),
            values={"workspace_id": other},
        )
        await update_rows(session, table, "id", [])
    assert await _events(database) == {
        "evt_0": ("zero", other, {"v": 0}),
        "evt_1": ("old", ws, {}),
        "evt_2": ("old", ws, {}),  # not live: the condition keeps it
        "evt_3": ("three", other, {"v": 3}),
    }


def test_rows_go_as_one_array_per_column_on_postgresql():
    from sqlalchemy.dialects import postgresql

    from imail.kit.sql import _insert_unnest, _update_unnest

    sql = str(_insert_unnest(Event.__table__, ("id", "data")).compile(dialect=postgresql.asyncpg.dialect()))
    assert sql == (
        "INSERT INTO events (id, data) SELECT unnest($1::VARCHAR(40)[]) AS unnest_1, "
        "CAST(unnest($2::TEXT[]) AS JSONB) AS unnest_2"
    )
    stmt, given = _update_unnest(Event.__table__, "id", ("type",))
    sql = str(stmt.values(type=given.c.type).compile(dialect=postgresql.asyncpg.dialect()))
    assert "FROM (SELECT unnest($1::VARCHAR(40)[]) AS id, unnest($2::VARCHAR(64)[]) AS type) AS given" in sql
