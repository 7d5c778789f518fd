"""Engine and session factories for PostgreSQL (asyncpg) and the embedded SQLite (aiosqlite).

The edge owns the transaction: the request dependency and the worker runner commit on success and roll
back on error; services and repositories only flush. `after_commit` defers work (announcing a key revocation)
until the transaction has committed.

A GET or HEAD of the API (`/v1/…`) reads without a transaction: its session runs in autocommit mode, which
saves the BEGIN and COMMIT round trips (two of the four a small list request makes on PostgreSQL), and it
refuses to write — a GET that inserts, updates or deletes is a bug, and it fails loudly instead of
half-committing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session

from imail.config import Settings


class Database:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = make_engine(settings)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # Same pool. On PostgreSQL a connection checked out for reading is switched to autocommit (a flag of
        # the asyncpg adapter, no round trip) and back when returned. SQLite needs no switch: its driver only
        # opens a transaction before a write, so a plain SELECT already runs without one.
        self.reads = async_sessionmaker(
            self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT"),
            sync_session_class=ReadOnlySession,
            expire_on_commit=False,
            autoflush=False,
        )

        # Autocommit for writes that must be durable before anything else happens, one statement each (the
        # before-DATA marks on SQLite; PostgreSQL's run on `pinned()`): one round trip instead of BEGIN, the
        # statement and COMMIT.
        self.single_statements = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            autoflush=False,
        )
        self._pinned: Any = None  # see pinned()
        self._pinned_lock = asyncio.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block ends cleanly and rolls back otherwise."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            for callback in session.info.pop(AFTER_COMMIT, ()):
                await callback(self)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only: no transaction, each statement sees the latest committed data."""
        async with self.reads() as session:
            yield session
            # Nothing may be left unwritten silently: pending changes reach the before_flush guard and fail.
            await session.flush()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session whose every statement commits on its own, as it runs: for one durable write, not a
        unit."""
        async with self.single_statements() as session:
            yield session

    @asynccontextmanager
    async def pinned(self) -> AsyncIterator[Any]:
        """PostgreSQL only: the driver's own connection (asyncpg) of one pool connection kept checked out, for
        the single statements that run most often, each committing as it runs (no transaction is ever opened
        on it): the before-DATA marks. They skip SQLAlchemy's per-execution work and the pool check-out
        (`kit.sql.DriverStatement`). One user at a time. A failure drops the connection; the next use takes a
        new one from the pool."""
        async with self._pinned_lock:
            if self._pinned is None:
                self._pinned = await self.engine.raw_connection()
            try:
                yield self._pinned.driver_connection
            except BaseException:
                self._drop_pinned()
                raise

    def _drop_pinned(self) -> None:
        if self._pinned is not None:
            pinned, self._pinned = self._pinned, None
            pinned.invalidate()  # closed, not returned: its state after a failure is unknown

    async def ping(self) -> None:
        """One round trip on a fresh connection from the pool: raises when the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        self._drop_pinned()
        await self.engine.dispose()


def make_engine(settings: Settings) -> AsyncEngine:
    """The engine; with `hide_parameters`, a failing statement's error names the SQL but never its bound
    values."""
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(
        settings.database_url,
        hide_parameters=True,
        # The pool keeps what a busy process uses at once: a connection beyond pool_size is closed when
        # returned, and opening one (a PostgreSQL backend, the asyncpg handshake, type codecs) costs more than
        # a request.
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size // 2,
        pool_timeout=settings.database_timeout,
        connect_args={
            "timeout": settings.database_timeout,
            "command_timeout": settings.database_command_timeout,
            # Every statement is planned for its own parameters. The engine's queries take id arrays
            # (`kit.sql.among`) of a few to thousands of elements; a prepared statement's generic plan
            # assumes a small array, and once chosen (often while the table is still small) it stays: a
            # sequential scan comparing every row with every element, quadratic in the batch. Measured in
            # bench/RESULTS.md ("Steady sending").
            "server_settings": {"plan_cache_mode": "force_custom_plan"},
        },
    )


AFTER_COMMIT = "imail.after_commit"
READ_METHODS = frozenset({"GET", "HEAD"})


def after_commit(session: AsyncSession, callback: Callable[[Database], Awaitable[Any]]) -> None:
    """Await `callback(database)` once the session's `Database.transaction` has committed; dropped on
    rollback."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


class ReadOnlyWrite(RuntimeError):
    """A write attempted on a read-only session (a GET of the API)."""


class ReadOnlySession(Session):
    pass


def _refuse(what: str) -> ReadOnlyWrite:
    return ReadOnlyWrite(f"{what} on a read-only session: GET and HEAD requests of /v1 must not write")


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _no_statements_that_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise _refuse(f"{type(state.statement).__name__} statement")


@event.listens_for(ReadOnlySession, "before_flush")
def _no_pending_changes(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.deleted or any(session.is_modified(obj) for obj in session.dirty):
        raise _refuse("Pending changes")


def _is_api_read(request: Request) -> bool:
    if request.method not in READ_METHODS:
        return False
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.startswith("/v1/")


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed after the endpoint returns, rolled back if it raised; for a GET or
    HEAD of the API, a read-only session without a transaction."""
    database: Database = request.app.state.database
    if _is_api_read(request):
        async with database.read() as session:
            yield session
        return
    async with database.transaction() as session:
        yield session


# scope="function": commit before the response is sent, so a failed commit can never follow a 2xx.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
