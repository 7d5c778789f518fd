"""SQL constructs shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Boolean, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


class among(ColumnElement[bool]):  # noqa: N801 - reads as an operator: among(Lead.id, ids)
    """`column IN (values)`, written `column = ANY($1)` with one array parameter on PostgreSQL.

    An IN list renders one SQL text per list length, and asyncpg prepares and keeps every distinct text on every
    pooled connection: a worker whose batches vary in size filled those caches for its first half hour (the soak's
    RSS creep). With an array there is one text per query, prepared once per connection."""

    type = Boolean()
    inherit_cache = True
    # Both forms' parameters are part of the cache key, so a cached compilation gets this call's values whichever
    # form the dialect compiled.
    _traverse_internals = [
        ("in_list", InternalTraversal.dp_clauseelement),
        ("any_array", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, values: Iterable[Any] | BindParameter[Any]):
        """`values` are the values, or `bindparam("name")` for a statement built once and given them (a list) at
        execution, as `{"name": [...]}`."""
        # One expanding parameter, not a literal per value: building the IN form costs the same for 2 values or 200.
        given = {"key": values.key} if isinstance(values, BindParameter) else {"key": None, "value": list(values)}
        self.in_list = column.in_(bindparam(**given, expanding=True))
        self.any_array = column == any_(bindparam(**given, type_=ARRAY(column.type)))


@compiles(among)
def _compile_in_list(element: among, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.in_list, **kw)


@compiles(among, "postgresql")
def _compile_any_array(element: among, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.any_array, **kw)


class Loaded:
    """A row read with Core, as a plain object: code written for ORM instances reads and sets its attributes the
    same way, and `changes()` gives the columns set to new values, for the caller to write back with one
    executemany. For hot paths that read hundreds of rows a transaction and change a few columns of each: an
    ORM instance costs an identity-map entry, instrumented attribute events and a unit-of-work flush per row."""

    def __init__(self, columns: Sequence[str], row: Any):
        values = dict(zip(columns, row))
        self.__dict__.update(values)
        self.__dict__["_loaded"] = values

    @classmethod
    def all(cls, result: Any) -> list[Loaded]:
        """Every row of a Core result."""
        columns = list(result.keys())
        return [cls(columns, row) for row in result]

    def changes(self) -> dict[str, Any]:
        loaded = self.__dict__["_loaded"]
        return {name: value for name, value in self.__dict__.items() if name != "_loaded" and loaded.get(name) != value}


class DriverStatement:
    """A Core statement compiled once for one dialect, to run on the driver's own connection (asyncpg): its SQL
    text, and `args(**values)` in the text's parameter order (values compiled into the statement, like a
    `.values(status=...)`, fill in themselves). SQLAlchemy's work per execution (the cache look-up, an execution
    context, result processing, the greenlet hand-over) is skipped; on the before-DATA marks it was ~0.9 ms of CPU
    a statement against asyncpg's own ~0.1. Only for parameters that need no conversion by SQLAlchemy: strings,
    numbers, and lists of them."""

    def __init__(self, statement: Any, dialect: Any):
        compiled = statement.compile(dialect=dialect)
        computed = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        if computed:  # SQLAlchemy computes these per execution; run on the driver they would be NULL
            raise ValueError(f"columns with Python-side defaults cannot run on the driver: {', '.join(computed)}")
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ())
        self._compiled_values = compiled.params
        self._required = {key for key in self._order if compiled.binds[key].required}

    def args(self, **values: Any) -> list[Any]:
        missing = sorted(self._required - values.keys())
        if missing:
            raise TypeError(f"no value for {', '.join(missing)}")
        return [values[key] if key in values else self._compiled_values[key] for key in self._order]
