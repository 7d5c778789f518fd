"""SQL constructs shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, flag_modified, set_committed_value
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


class among(ColumnElement[bool]):
    """`column IN (values)`, written `column = ANY($1)` with one array parameter on PostgreSQL.

    An IN list renders one SQL text per list length, and asyncpg prepares and keeps every distinct text on
    every pooled connection: a worker whose batches vary in size filled those caches for its first half hour
    (the soak's RSS creep). With an array there is one text per query, prepared once per connection."""

    type = Boolean()
    inherit_cache = True
    # Both forms' parameters are part of the cache key, so a cached compilation gets this call's values
    # whichever form the dialect compiled.
    _traverse_internals = [
        ("in_list", InternalTraversal.dp_clauseelement),
        ("any_array", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, values: Iterable[Any] | BindParameter[Any]):
        """`values` are the values, or `bindparam("name")` for a statement built once and given them (a list)
        at execution, as `{"name": [...]}`."""
        # One expanding parameter, not a literal per value: building the IN form costs the same for 2 values
        # or 200.
        given = (
            {"key": values.key} if isinstance(values, BindParameter) else {"key": None, "value": list(values)}
        )
        self.in_list = column.in_(bindparam(**given, expanding=True))
        self.any_array = column == any_(bindparam(**given, type_=ARRAY(column.type)))


@compiles(among)
def _compile_in_list(element: among, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.in_list, **kw))


@compiles(among, "postgresql")
def _compile_any_array(element: among, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.any_array, **kw))


class HotPathRow:
    """THE hot-path style (one of two ways to touch rows: ORM instances everywhere else). A row read with
    Core, as a plain object: code written for ORM instances reads and sets its attributes the same way, and
    `changes()` gives the columns set to new values, for the repository to write back in one statement
    (`update_rows`). For hot paths that read hundreds of rows a transaction and change a few columns of each
    (the sending claim): an ORM instance costs an identity-map entry, instrumented attribute events and a
    unit-of-work flush per row. Such rows live behind the repository (which reads them and writes their
    changes back); a repository that writes a fixed set of columns refuses changes outside it (see sending's
    `save_claimed`), so no change is ever dropped silently."""

    def __init__(self, columns: Sequence[str], row: Any):
        values = dict(zip(columns, row))
        self.__dict__.update(values)
        self.__dict__["_loaded"] = values

    if TYPE_CHECKING:
        # The row's columns are its attributes, typed as Any: which columns depends on the statement.
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    @classmethod
    def all(cls, result: Any) -> list[HotPathRow]:
        """Every row of a Core result."""
        columns = list(result.keys())
        return [cls(columns, row) for row in result]

    def changes(self) -> dict[str, Any]:
        loaded = self.__dict__["_loaded"]
        return {
            name: value
            for name, value in self.__dict__.items()
            if name != "_loaded" and loaded.get(name) != value
        }


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched. `AsyncSession.execute` is typed to return a `Result`; a DML
    statement's is a `CursorResult`, which has the count."""
    if not isinstance(result, CursorResult):
        raise TypeError("rowcount() takes the result of an UPDATE or DELETE")
    return result.rowcount


class DriverStatement:
    """A Core statement compiled once for one dialect, to run on the driver's own connection (asyncpg): its
    SQL text, and `args(**values)` in the text's parameter order (values compiled into the statement, like a
    `.values(status=...)`, fill in themselves). SQLAlchemy's work per execution (the cache look-up, an
    execution context, result processing, the greenlet hand-over) is skipped; on the before-DATA marks that
    work dwarfed the driver's own (bench/sending.py profiles it). Only for parameters that need no conversion
    by SQLAlchemy: strings, numbers, and lists of them."""

    def __init__(self, statement: Any, dialect: Any):
        compiled = statement.compile(dialect=dialect)
        computed = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        if computed:  # SQLAlchemy computes these per execution; run on the driver they would be NULL
            raise ValueError(
                f"columns with Python-side defaults cannot run on the driver: {', '.join(computed)}"
            )
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ())
        self._compiled_values = compiled.params
        self._required = {key for key in self._order if compiled.binds[key].required}

    def args(self, **values: Any) -> list[Any]:
        missing = sorted(self._required - values.keys())
        if missing:
            raise TypeError(f"no value for {', '.join(missing)}")
        return [values[key] if key in values else self._compiled_values[key] for key in self._order]


# --- many rows in one statement -----------------------------------------------------------------------------
#
# An executemany costs per row: SQLAlchemy processes each row's parameters, asyncpg binds and executes the
# statement once per row, and PostgreSQL starts an executor per row. On PostgreSQL these helpers send each
# column as one array parameter and unnest them in a single statement, whose text does not depend on the
# number of rows. SQLite has no arrays: there they are the plain executemany.


def _unnested(table: Table, column: str) -> Any:
    """The column's values from the array parameter `<column>_values`, one per row (a name no SET clause's own
    parameter takes). JSON goes as text arrays (the driver has no JSON arrays) and is cast back."""
    column_type = table.c[column].type
    if _is_json(column_type):
        return cast(func.unnest(bindparam(f"{column}_values", type_=ARRAY(Text))), column_type)
    return func.unnest(bindparam(f"{column}_values", type_=ARRAY(column_type)))


def _is_json(column_type: Any) -> bool:
    return isinstance(column_type, JSON) or isinstance(getattr(column_type, "impl", None), JSON)


def _json_text(value: Any) -> str:
    # orjson: several times cheaper than json.dumps on the event payloads a sending batch writes by the
    # hundred; non-string keys become strings, as json.dumps makes them.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _as_arrays(
    table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    arrays = {}
    for column in columns:
        values = [row[column] for row in rows]
        column_type = table.c[column].type
        if _is_json(column_type):
            # As SQLAlchemy's JSON stores None: JSON null, unless the type says SQL NULL.
            keep_null = getattr(column_type, "none_as_null", False) or getattr(
                getattr(column_type, "impl", None), "none_as_null", False
            )
            values = [None if value is None and keep_null else _json_text(value) for value in values]
        arrays[f"{column}_values"] = values
    return arrays


@cache
def _insert_unnest(table: Table, columns: tuple[str, ...]) -> Any:
    return insert(table).from_select(list(columns), select(*(_unnested(table, c) for c in columns)))


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert these rows, every one with the same columns (those of the first). On PostgreSQL a Python-side
    default of a column not given is computed once for the statement, not per row: give every column that
    needs its own value in each row (ids, above all)."""
    if not rows:
        return
    if not is_postgres(session):
        await session.execute(insert(table), list(rows))
        return
    columns = tuple(rows[0])
    await session.execute(_insert_unnest(table, columns), _as_arrays(table, columns, rows))


@cache
def _update_unnest(table: Table, key: str, columns: tuple[str, ...]) -> tuple[Any, Any]:
    given = select(*(_unnested(table, c).label(c) for c in (key, *columns))).subquery("given")
    return update(table).where(table.c[key] == given.c[key]), given


async def update_rows(
    session: AsyncSession,
    table: Table,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    *conditions: Any,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Set, in each row of `table` whose `key` column equals a given row's `key`, that row's other columns,
    and `values` (the same for all). `conditions` narrow the rows updated. Every given row has the same
    columns, and keys are distinct."""
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c != key)
    fixed = dict(values or {})
    if not is_postgres(session):
        # "_key" and "_<column>": bind names that never clash with a column of the statement's SET clause.
        stmt = (
            update(table)
            .where(table.c[key] == bindparam("_key"), *conditions)
            .values({**{c: bindparam(f"_{c}") for c in columns}, **fixed})
        )
        await session.execute(
            stmt, [{"_key": row[key], **{f"_{c}": row[c] for c in columns}} for row in rows]
        )
        return
    stmt, given = _update_unnest(table, key, columns)
    stmt = stmt.where(*conditions).values({**{c: given.c[c] for c in columns}, **fixed})
    await session.execute(stmt, _as_arrays(table, (key, *columns), rows))


def is_postgres(session: AsyncSession) -> bool:
    """Whether the session's database is PostgreSQL (else SQLite): the one place a repository asks."""
    return session.get_bind().dialect.name == "postgresql"


def upsert_insert(session: AsyncSession) -> Any:
    """The dialect's `insert` (PostgreSQL's or SQLite's), which both offer `on_conflict_do_…`."""
    return pg_insert if is_postgres(session) else sqlite_insert


def align_updates(objects: Iterable[Any]) -> None:
    """Give every changed object among these (ORM objects of one class) the same changed columns, so that the
    flush writes them with one executemany: it groups only consecutive rows (in primary key order) with the
    same columns, and otherwise sends one UPDATE per row. The columns an object did not change are written
    back as they were read, so call this only for rows the transaction holds locked."""
    states = [inspect(obj) for obj in objects]
    states = [state for state in states if state.modified]
    if len(states) < 2:
        return
    keys = {
        prop.key for prop in states[0].mapper.column_attrs if not any(c.primary_key for c in prop.columns)
    }
    # What the flush writes: a column set to the value it had is not written, so it is not a change here.
    # Only a column set since the load has its loaded value in committed_state.
    changed = [
        {
            key
            for key in state.committed_state
            if key in keys and state.get_history(key, PASSIVE_NO_INITIALIZE).has_changes()
        }
        for state in states
    ]
    every = set().union(*changed)
    for state, own in zip(states, changed, strict=True):
        if not own:
            continue
        obj = state.obj()
        for key in every - own:
            # Forget any no-op assignment first: flagged, the column is written whatever its value.
            set_committed_value(obj, key, getattr(obj, key))
            flag_modified(obj, key)
