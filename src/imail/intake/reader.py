"""Reading one inbox over IMAP: its INBOX and spam folder from the last UID seen, a batch at a time, each
batch acted on and the folder's cursor advanced in one transaction; connections kept per worker and reused,
IDLE-ing between reads where the server offers IDLE.

Where reading resumes. A folder's cursor holds the last UID acted on and the folder's UIDVALIDITY. A UID only
means something under the UIDVALIDITY it was read with (RFC 3501 §2.3.1.1), so when the server reports another
one (the folder was recreated, or the server migrated) — and when a folder is read for the first time — the
cursor is placed by date instead: just before the first message that arrived (INTERNALDATE) since a horizon,
the last time the folder was read to its end (first time: the inbox's creation), minus a day of margin.
Messages already acted on before the change are recognised by their Message-ID (`inbound_receipts`) and not
acted on again; none that arrived since the horizon is skipped. Mail older than the horizon is never read.

A crash loses nothing and doubles nothing: a batch's effects and its cursor advance commit together, and the
advance is conditional on the cursor still being where the batch started (a second reader would roll back).

A read that fails — the server unreachable, refusing the login or a command, or an error in imail's own code —
is a `ReadFailure`, told in our words plus the server's where it answered; the worker counts them per inbox
(imail.inboxes.monitor.report_read_failure), waits longer after each, and disconnects the inbox at the limit.

Folders are read with EXAMINE (read-only). The one exception is warmup mail (imail.warmup): once a folder's
batches are committed, its warmup messages are marked read and important and moved out of spam, with SELECT.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Protocol

import aioimaplib
import httpx
import structlog
from sqlalchemy.exc import DBAPIError

from imail.config import Settings
from imail.db import Database
from imail.inboxes.connection import CredentialsUnavailable, endpoints_for
from imail.intake import service
from imail.intake.parser_pool import ParserPool
from imail.intake.repository import ReaderQueue
from imail.intake.service import Fetched, Match
from imail.kit.signing import Signer
from imail.kit.tenancy import Tenant, tenant_of
from imail.mail import imap
from imail.mail.endpoint import Endpoint, MailConnectionError, describe
from imail.mail.parsing import InboundMessage
from imail.models import Inbox
from imail.replies.remote import RemoteClassifier
from imail.replies.training import own_classifier
from imail.replies.verdict import Verdict, assess
from imail.warmup import content as warmup_content
from imail.warmup import service as warmup

log = structlog.get_logger("imail.inbound")


class ReadRuntime(Protocol):
    """What reading an inbox uses: the IMAP reader worker's context has it (imail.workers.imap_reader)."""

    settings: Settings
    database: Database
    http: httpx.AsyncClient

    @property
    def clock(self) -> Callable[[], datetime]: ...


INBOX = "INBOX"
HORIZON_MARGIN = timedelta(days=1)
SYNCED_STAMP_EVERY = timedelta(hours=1)  # how stale `synced_at` may get before a quiet read refreshes it
RELIST_EVERY = 600.0  # seconds before the folder list (where the spam folder is) is asked for again
READ_AHEAD = 2  # chunks fetched, parsed and prepared ahead of the batch being acted on
JOINED = 3  # chunks acted on in one transaction at most
WARMUP_FLAGS = ("\\Seen", "\\Flagged")  # read, and important (starred)
IMAP_ERRORS = (aioimaplib.AioImapException, imap.ImapCommandError, OSError, TimeoutError, ConnectionError)


class CursorMoved(Exception):
    """Another reader advanced the folder's cursor meanwhile: this batch's work was rolled back."""


# --- connections ------------------------------------------------------------------------------------------


@dataclass
class Connection:
    inbox_id: str
    endpoint: Endpoint
    client: aioimaplib.IMAP4 | None = None
    folders: list[str] | None = None
    folders_listed: float = 0.0
    last_used: float = field(default_factory=time.monotonic)
    busy: bool = False
    lost: bool = False
    idle: asyncio.Future | None = None
    watcher: asyncio.Task | None = None


class InboundPool:
    """IMAP connections of one worker, one per inbox, at most `inbound_max_connections` (the least recently
    used idle one is closed to make room). A connection IDLE-ing on its INBOX announces new mail through
    `pushed`."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.limit = settings.inbound_max_connections
        self.timeout = settings.mail_timeout
        self.connections: dict[str, Connection] = {}
        self.pushed: set[str] = set()
        # Set when a batch is committed or IDLE announces mail: the worker may claim more inboxes while a long
        # read (a backlog) goes on (imail.workers.imap_reader).
        self.stirred = asyncio.Event()
        self.evicted: set[str] = set()  # IDLE connections closed for room: those inboxes go back to polling
        self.opened = 0  # connections opened so far (reuse is visible in tests and the benchmark)
        self.last_pruned = 0.0
        self.parser = ParserPool(settings.inbound_parse_processes, settings.inbound_parse_pool_from)

    def take_pushed(self) -> set[str]:
        pushed, self.pushed = self.pushed, set()
        return pushed

    async def acquire(self, inbox_id: str, endpoint: Endpoint) -> Connection:
        """The inbox's open connection (IDLE stopped, checked alive), or a new one; raises MailConnectionError
        when connecting or logging in fails."""
        conn = self.connections.get(inbox_id)
        if conn is not None and (
            conn.endpoint != endpoint or conn.lost or conn.client is None or not imap.is_open(conn.client)
        ):
            await self.drop(inbox_id)
            conn = None
        if conn is not None:
            conn.busy = True
            if not await self._ready(conn):
                await self.drop(inbox_id)
                conn = None
        if conn is None:
            await self._make_room()
            conn = Connection(inbox_id, endpoint, busy=True)
            self.connections[inbox_id] = conn

            def lost(_exc: Exception | None, conn: Connection = conn) -> None:
                conn.lost = True
                if (
                    conn.idle is not None
                ):  # dropped while IDLE-ing: read (and reconnect) at the next iteration
                    self.pushed.add(conn.inbox_id)
                    self.stirred.set()

            try:
                conn.client = await imap.open_client(
                    endpoint,
                    timeout=self.timeout,
                    ca_file=self.settings.mail_ca_file,
                    on_lost=lost,
                    allow_private=self.settings.mail_allow_private,
                )
            except BaseException:
                self.connections.pop(inbox_id, None)
                raise
            self.opened += 1
        return conn

    async def _ready(self, conn: Connection) -> bool:
        """Stop IDLE (the server's answer proves the connection alive), else a NOOP."""
        assert conn.client is not None
        if conn.watcher is not None:
            conn.watcher.cancel()
            conn.watcher = None
        try:
            if conn.idle is not None:
                idle, conn.idle = conn.idle, None
                await imap.idle_stop(conn.client, idle, timeout=self.timeout)
            else:
                async with asyncio.timeout(self.timeout):
                    return (await conn.client.noop()).result == "OK"
        except IMAP_ERRORS:
            return False
        return True

    def release(self, conn: Connection) -> None:
        conn.busy = False
        conn.last_used = time.monotonic()

    async def start_idle(self, conn: Connection, refresh: float) -> bool:
        """IDLE on the (selected) INBOX, watched by a task that marks the inbox pushed when mail arrives, when
        the refresh time comes, or when the connection drops."""
        assert conn.client is not None
        try:
            conn.idle = await imap.idle_start(conn.client, timeout=self.timeout, refresh=refresh)
        except IMAP_ERRORS:
            conn.idle = None
            return False
        conn.watcher = asyncio.create_task(self._watch(conn, refresh), name=f"imap-idle:{conn.inbox_id}")
        return True

    async def _watch(self, conn: Connection, refresh: float) -> None:
        assert conn.client is not None
        try:
            while not conn.lost:
                lines = await imap.wait_push(conn.client, timeout=refresh + 30)
                if lines is None or imap.announces_new_mail(lines):
                    break
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - whatever broke the connection, the next read reconnects
            conn.lost = True
        self.pushed.add(conn.inbox_id)
        self.stirred.set()

    async def _make_room(self) -> None:
        while len(self.connections) >= self.limit:
            spare = [c for c in self.connections.values() if not c.busy]
            if not spare:
                # every connection is being read: the caller's concurrency is below the limit, so this is
                # brief
                return
            victim = min(spare, key=lambda c: c.last_used)
            if victim.idle is not None:
                self.evicted.add(victim.inbox_id)
            await self.drop(victim.inbox_id)

    async def drop(self, inbox_id: str) -> None:
        conn = self.connections.pop(inbox_id, None)
        if conn is None:
            return
        # Closed on purpose, not lost: without this the close would announce the inbox (see `lost` in
        # acquire), and an evicted inbox read again at once would evict another, starving inboxes never read
        # yet.
        conn.idle = None
        if conn.watcher is not None:
            conn.watcher.cancel()
        if conn.client is not None:
            await imap.close_client(conn.client, timeout=min(self.timeout, 2.0))

    async def prune(self, owners: dict[str, str | None], worker_id: str) -> None:
        """Close idle connections of inboxes another worker has read since (it keeps that inbox's connection),
        and of inboxes that may no longer be read (disconnected, deleted: absent from `owners`)."""
        for inbox_id, conn in list(self.connections.items()):
            if not conn.busy and owners.get(inbox_id) != worker_id:
                await self.drop(inbox_id)

    async def close(self) -> None:
        for inbox_id in list(self.connections):
            await self.drop(inbox_id)
        self.parser.close()


# --- one inbox --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadFailure:
    """Why a read of an inbox failed, for its owner: our words, and the server's where it answered."""

    reason: str
    login: bool = False  # connecting or logging in failed (the connection monitor is told too)
    crash: BaseException | None = None  # an error in imail's own code, not an answer of the server

    @classmethod
    def from_server(cls, exc: BaseException) -> ReadFailure:
        """The IMAP session failed after login: a command refused, the connection lost or silent."""
        if isinstance(exc, imap.ImapCommandError):
            return cls(f"the IMAP server refused {exc.command} while mail was being read: {exc.detail}")
        if isinstance(exc, TimeoutError):
            return cls("the IMAP server stopped answering while mail was being read")
        return cls(f"the connection to the IMAP server broke while mail was being read: {describe(exc)}")

    @classmethod
    def from_crash(cls, exc: BaseException) -> ReadFailure:
        # The owner learns what kind of error; its text and traceback, which may name internals, go to the
        # log.
        return cls(
            f"imail failed while reading this inbox (an internal error, {type(exc).__name__}); the details "
            "are in the server's log",
            crash=exc,
        )

    @cached_property
    def fingerprint(self) -> str | None:
        """For a crash: the same for the same error raised at the same place, whatever its message says."""
        if self.crash is None:
            return None
        where = [
            f"{frame.filename}:{frame.name}:{frame.lineno}"
            for frame in traceback.extract_tb(self.crash.__traceback__)
        ]
        kind = f"{type(self.crash).__module__}.{type(self.crash).__qualname__}"
        return hashlib.sha256("\n".join([kind, *where]).encode()).hexdigest()


@dataclass
class InboxResult:
    processed: int = 0  # messages read
    outcomes: Counter = field(default_factory=Counter)  # what they were (reply, bounce_hard, … unmatched)
    more: bool = False  # more messages wait than one iteration may read
    idle: bool = False  # IDLE-ing on INBOX now
    error: str | None = None  # why the read stopped short (a failure, or another reader overlapping)
    failure: ReadFailure | None = None  # counted towards disconnecting the inbox
    # The inbox's OAuth token could not be had: not a failed read, it disconnects the inbox or makes it back
    # off (imail.inboxes.monitor.report_token_failure)
    token_failure: CredentialsUnavailable | None = None
    rotated_token: str | None = None

    @classmethod
    def failed(cls, failure: ReadFailure, rotated_token: str | None = None) -> InboxResult:
        return cls(error=failure.reason, failure=failure, rotated_token=rotated_token)


async def sync_inbox(
    ctx: ReadRuntime, pool: InboundPool, inbox: Inbox, go_on: Callable[[], bool] = lambda: False
) -> InboxResult:
    """Read an inbox's INBOX and spam folder up to `inbound_max_messages` messages, acting on each batch; past
    them for as long as `go_on()` says so (see sync_folder)."""
    settings = ctx.settings
    result = InboxResult()
    try:
        endpoints = await endpoints_for(inbox, settings, ctx.http, ctx.clock())
    except CredentialsUnavailable as exc:
        if exc.judged_at_once:
            return InboxResult(error=exc.detail, token_failure=exc)
        return InboxResult.failed(ReadFailure(exc.detail, login=True))
    result.rotated_token = endpoints.rotated_token
    try:
        conn = await pool.acquire(inbox.id, endpoints.imap)
    except MailConnectionError as exc:
        return InboxResult.failed(ReadFailure(exc.message, login=True), endpoints.rotated_token)
    try:
        assert conn.client is not None
        if conn.folders is None or time.monotonic() - conn.folders_listed > RELIST_EVERY:
            listing = await imap.list_folders(conn.client, timeout=pool.timeout)
            conn.folders = [INBOX, *[f for f in imap.junk_folders(listing)[:1] if f.upper() != INBOX]]
            conn.folders_listed = time.monotonic()
        budget = settings.inbound_max_messages
        # The spam folder first, so the connection ends up with INBOX selected, ready to IDLE on.
        for folder in reversed(conn.folders):
            if result.processed >= budget:
                result.more = True
                break
            try:
                read, more = await sync_folder(
                    ctx,
                    conn,
                    inbox,
                    folder,
                    budget - result.processed,
                    result.outcomes,
                    pool.parser,
                    pool.stirred.set,
                    go_on,
                )
            except imap.ImapCommandError as exc:
                if folder == INBOX:
                    raise
                # The spam folder went away (renamed, deleted): INBOX is still read; the list is asked for
                # again.
                log.warning("spam folder unreadable", inbox_id=inbox.id, folder=folder, error=exc.detail)
                conn.folders = None
                continue
            result.processed += read
            result.more = result.more or more
        if not result.more and settings.inbound_idle and conn.client.has_capability("IDLE"):
            result.idle = await pool.start_idle(conn, refresh=settings.inbound_idle_recheck)
    except IMAP_ERRORS as exc:
        result.failure = ReadFailure.from_server(exc)
        result.error = result.failure.reason
        await pool.drop(inbox.id)
    except (
        CursorMoved
    ) as exc:  # another reader got there (its lease, not ours): its work stands, ours rolled back
        result.error = f"cursor of {exc} moved by another reader"
        log.warning("inbox read overlapped", inbox_id=inbox.id, folder=str(exc))
        await pool.drop(inbox.id)
    except BaseException:
        await pool.drop(inbox.id)
        raise
    finally:
        pool.release(conn)
    return result


async def _cursor(ctx: ReadRuntime, inbox_id: str, folder: str) -> tuple[int, int, datetime | None] | None:
    async with ctx.database.transaction() as session:
        cursor = await ReaderQueue(session).cursor(inbox_id, folder)
        return None if cursor is None else (cursor.uidvalidity, cursor.last_uid, cursor.synced_at)


async def sync_folder(
    ctx: ReadRuntime,
    conn: Connection,
    inbox: Inbox,
    folder: str,
    budget: int,
    outcomes: Counter,
    parser: ParserPool,
    committed: Callable[[], None] = lambda: None,
    go_on: Callable[[], bool] = lambda: False,
) -> tuple[int, bool]:
    """Read one folder from its cursor: (messages read, whether more are waiting); `committed` is called after
    each batch. Past the `budget`, the next FETCH is read only if `go_on()` says so when its turn comes: a
    backlog read in one pass keeps its read-ahead going instead of starting it again every `budget`
    messages."""
    client = conn.client
    assert client is not None
    timeout = ctx.settings.mail_timeout
    status = await imap.examine(client, folder, timeout=timeout)
    stored = await _cursor(ctx, inbox.id, folder)
    synced_at = None
    if stored is None or stored[0] != status.uidvalidity:
        horizon = (
            stored[2] if stored is not None and stored[2] is not None else inbox.created_at
        ) - HORIZON_MARGIN
        since = await imap.uids_since(client, horizon.date(), timeout=timeout)
        if since:
            last_uid = since[0] - 1
        elif status.uidnext is not None:
            last_uid = status.uidnext - 1
        else:
            last_uid = max(await imap.uids_from(client, 1, timeout=timeout), default=0)
        async with ctx.database.transaction() as session:
            await ReaderQueue(session).reset_cursor(
                inbox.id, folder, status.uidvalidity, last_uid, ctx.clock()
            )
        log.info(
            "folder cursor placed",
            inbox_id=inbox.id,
            folder=folder,
            uidvalidity=status.uidvalidity,
            last_uid=last_uid,
            previous_uidvalidity=stored[0] if stored else None,
        )
        position = last_uid
    else:
        position, synced_at = stored[1], stored[2]

    uids: list[int] = []
    if status.uidnext is None or status.uidnext - 1 > position:
        uids = await imap.uids_from(client, position + 1, timeout=timeout)
    if not uids:
        now = ctx.clock()
        if synced_at is None or now - synced_at > SYNCED_STAMP_EVERY:
            async with ctx.database.transaction() as session:
                await ReaderQueue(session).touch(inbox.id, folder, now)
        return 0, False

    filings: list[warmup.Filing] = []
    size = ctx.settings.inbound_fetch_batch
    take, rest = uids[:budget], uids[budget:]
    chunks = [take[i : i + size] for i in range(0, len(take), size)]
    budgeted = len(chunks)
    chunks += [rest[i : i + size] for i in range(0, len(rest), size)]
    fetch_timeout = max(timeout, 60.0)
    # The chunks are fetched one after another and each is parsed (in a child process for a large chunk),
    # matched and classified while the batches before it are acted on, up to READ_AHEAD of them: the IMAP
    # round trips, the parsing, the matching and the classifying overlap the database's work on this batch.
    # Chunks found ready when a batch's turn comes join it (up to JOINED chunks): a backlog pays a
    # transaction's fixed cost once for several FETCHes.
    ahead: asyncio.Queue[asyncio.Future[tuple[list[Fetched], Prepared | Exception]] | None] = asyncio.Queue(
        maxsize=READ_AHEAD
    )
    fetcher = asyncio.create_task(
        _read_ahead(ctx, client, inbox, chunks, budgeted, go_on, fetch_timeout, parser, ahead)
    )
    held: asyncio.Future | None = None  # a chunk taken from the queue that could not join the batch before
    taken = 0  # chunks taken so far
    ended = False  # the read-ahead said it fetches no more
    try:
        while not ended:
            future, held = held or await ahead.get(), None
            if future is None:
                break
            fetched, prepared = await future
            taken, joined = taken + 1, 1
            while joined < JOINED and not ahead.empty() and not isinstance(prepared, Exception):
                following = ahead.get_nowait()
                if following is None:
                    ended = True
                    break
                if not following.done() or following.exception():
                    held = following
                    break
                more_items, more_prepared = following.result()
                if isinstance(more_prepared, Exception):  # acted on alone, where its error is raised
                    held = following
                    break
                prepared = prepared.joined(len(fetched), more_prepared)
                fetched = fetched + more_items
                taken, joined = taken + 1, joined + 1
            last_uid = chunks[taken - 1][-1]
            await process_batch(
                ctx,
                inbox,
                folder,
                status.uidvalidity,
                position,
                last_uid,
                fetched,
                synced=taken == len(chunks),
                outcomes=outcomes,
                filings=filings,
                prepared=prepared,
            )
            position = last_uid
            committed()
    finally:
        fetcher.cancel()
        if held is not None:
            held.cancel()
        while not ahead.empty():
            if (left := ahead.get_nowait()) is not None:
                left.cancel()
    if filings:
        await _file_warmup(ctx, client, inbox, folder, filings)
    return sum(len(chunk) for chunk in chunks[:taken]), taken < len(chunks)


async def _read_ahead(
    ctx: ReadRuntime,
    client,
    inbox: Inbox,
    chunks: list[list[int]],
    budgeted: int,
    go_on: Callable[[], bool],
    timeout: float,
    parser: ParserPool,
    ahead: asyncio.Queue[asyncio.Future[tuple[list[Fetched], Prepared | Exception]] | None],
) -> None:
    """Fetch the chunks one after another on the folder's connection, each then parsed and prepared on its
    own while the next is fetched; a fetch that fails is handed on in its chunk's place. The chunks past the
    first `budgeted` only while `go_on()` says so; None after the last one fetched."""
    for index, uids in enumerate(chunks):
        if index >= budgeted and not go_on():
            break
        try:
            fetched = await imap.fetch_messages(client, uids, timeout=timeout)
        except Exception as exc:
            failed: asyncio.Future = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            await ahead.put(failed)
            return
        await ahead.put(asyncio.ensure_future(_parse_and_prepare(ctx, inbox, fetched, parser)))
    await ahead.put(None)


async def _parse_and_prepare(
    ctx: ReadRuntime, inbox: Inbox, fetched: list[tuple[int, bytes]], parser: ParserPool
) -> tuple[list[Fetched], Prepared | Exception]:
    """A fetched chunk, parsed and prepared. A preparation that failed is handed on as its error, raised when
    the batch's turn comes (process_batch), as if it had been prepared then."""
    parsed = await parser.parse(
        [raw for _, raw in fetched], classify=RemoteClassifier.from_settings(ctx.settings) is None
    )
    items = [
        Fetched(uid, raw, message, bounce, verdict)
        for (uid, raw), (message, bounce, verdict) in zip(fetched, parsed, strict=True)
    ]
    try:
        return items, await prepare_batch(ctx, inbox, items)
    except Exception as exc:
        return items, exc


async def _file_warmup(
    ctx: ReadRuntime, client, inbox: Inbox, folder: str, filings: list[warmup.Filing]
) -> None:
    """Mark the folder's warmup mail read and important and move it out of spam. Its placement is already
    committed, so a server refusing this (NO/BAD) is logged and the read goes on; a lost connection ends the
    read as usual."""
    try:
        await imap.file_messages(
            client,
            folder,
            [f.uid for f in filings],
            flags=WARMUP_FLAGS,
            move=[f.uid for f in filings if f.move_to_inbox],
            destination=INBOX,
            timeout=ctx.settings.mail_timeout,
        )
    except imap.ImapCommandError as exc:
        log.warning("warmup mail not filed", inbox_id=inbox.id, folder=folder, error=exc.detail)


# --- one batch --------------------------------------------------------------------------------------------


async def process_batch(
    ctx: ReadRuntime,
    inbox: Inbox,
    folder: str,
    uidvalidity: int,
    expected: int,
    last_uid: int,
    items: list[Fetched],
    *,
    synced: bool,
    outcomes: Counter,
    filings: list[warmup.Filing] | None = None,
    prepared: Prepared | Exception | None = None,
) -> None:
    """Act on a batch of fetched (and parsed) messages and move the cursor from `expected` to `last_uid`, in
    one transaction; `prepared` is the batch's preparation when it was read ahead. A message whose processing
    fails (a bug, not the database) is retried alone and, failing again, skipped."""
    try:
        if isinstance(prepared, Exception):
            raise prepared
        if prepared is None:
            prepared = await prepare_batch(ctx, inbox, items)
        counted, filed = await _commit(
            ctx, inbox, folder, uidvalidity, expected, last_uid, items, prepared, synced
        )
        outcomes.update(counted)
        if filings is not None:
            filings.extend(filed)  # only once committed: a rolled-back batch is read (and filed) again
        return
    except (CursorMoved, DBAPIError, OSError):
        raise
    except Exception:
        if len(items) <= 1:
            log.exception(
                "inbound message skipped", inbox_id=inbox.id, folder=folder, uids=[i.uid for i in items]
            )
            async with ctx.database.transaction() as session:
                if not await ReaderQueue(session).advance(
                    inbox.id, folder, uidvalidity, expected, last_uid, ctx.clock(), synced
                ):
                    raise CursorMoved(folder) from None
            outcomes["failed"] += len(items)
            return
    position = expected
    for index, item in enumerate(items):  # one at a time, to isolate the message that fails
        upto = last_uid if index + 1 == len(items) else item.uid
        await process_batch(
            ctx,
            inbox,
            folder,
            uidvalidity,
            position,
            upto,
            [item],
            synced=synced and upto == last_uid,
            outcomes=outcomes,
            filings=filings,
        )
        position = upto


@lru_cache(maxsize=4)
def _signer_for(secret: str) -> Signer:
    return Signer(secret)


def _signer(ctx: ReadRuntime) -> Signer:
    """Reads the unsubscribe tokens of mailto unsubscribes (imail.tracking.mailto)."""
    return _signer_for(ctx.settings.resolved_secret_key())


@dataclass
class Prepared:
    """What a batch's messages are, read before acting on them (no transaction): which of our emails each
    belongs to, the label of each reply, the warmup mail and the delivery reports about warmup mail. Nothing
    a batch does changes what the next one matches (the emails' Message-IDs, recipients and subjects, among
    every status a reply can be about), so the next batch is prepared while this one is acted on."""

    matches: dict[int, Match]
    verdicts: dict[int, Verdict]
    warm: list[tuple[int, InboundMessage]]
    dsns: frozenset[int]

    def joined(self, offset: int, following: Prepared) -> Prepared:
        """This preparation and the following chunk's, whose messages come after this one's `offset`."""
        return Prepared(
            {**self.matches, **{offset + i: m for i, m in following.matches.items()}},
            {**self.verdicts, **{offset + i: v for i, v in following.verdicts.items()}},
            self.warm + following.warm,
            self.dsns | {offset + i for i in following.dsns},
        )


async def prepare_batch(ctx: ReadRuntime, inbox: Inbox, items: list[Fetched]) -> Prepared:
    tenant = tenant_of(inbox)
    marker = warmup_content.marker(ctx.settings)
    warm = [(item.uid, item.message) for item in items if service.is_warmup(item.message, marker)]
    reports = {
        i: item.bounce.original_message_id
        for i, item in enumerate(items)
        if item.bounce.is_bounce and item.bounce.original_message_id
    }
    dsns: frozenset[int] = frozenset()
    matches: dict[int, Match] = {}
    classifier = None  # the shipped one, unless the workspace trained its own
    async with ctx.database.read() as session:
        if reports:
            dsns = await warmup.about_warmup(session, reports)
        if items:
            matches = await service.match_all(
                session, tenant, inbox, items, warmup_marker=marker, skip=dsns, signer=_signer(ctx)
            )
        needs_label = [i for i in matches if service.needs_label(items[i], matches[i])]
        if needs_label:
            classifier = await own_classifier(session, tenant.workspace_id)
    # Classification may call a remote endpoint: never while holding a database connection.
    verdicts: dict[int, Verdict] = {}
    for index in needs_label:
        item = items[index]
        if item.shipped_verdict is not None and classifier is None:
            verdicts[index] = item.shipped_verdict
            continue
        verdicts[index] = await assess(
            item.message, ctx.settings, client=ctx.http, classifier=classifier, bounce=item.bounce
        )
    return Prepared(matches, verdicts, warm, dsns)


async def _commit(
    ctx: ReadRuntime,
    inbox: Inbox,
    folder: str,
    uidvalidity: int,
    expected: int,
    last_uid: int,
    items: list[Fetched],
    prepared: Prepared,
    synced: bool,
) -> tuple[Counter, list[warmup.Filing]]:
    outcomes: Counter = Counter()
    async with ctx.database.transaction() as session:
        filed = await _act_all(ctx, session, tenant_of(inbox), inbox, folder, items, prepared, outcomes)
        if not await ReaderQueue(session).advance(
            inbox.id, folder, uidvalidity, expected, last_uid, ctx.clock(), synced
        ):
            raise CursorMoved(folder)
    return outcomes, filed


async def _act_all(
    ctx: ReadRuntime,
    session,
    tenant: Tenant,
    inbox: Inbox,
    folder: str,
    items: list[Fetched],
    prepared: Prepared,
    outcomes: Counter,
) -> list[warmup.Filing]:
    matches, warm, dsns = prepared.matches, prepared.warm, prepared.dsns
    outcomes["unmatched"] += len(items) - len(matches) - len(warm) - len(dsns)
    if warm or dsns:
        outcomes["warmup"] += len(warm) + len(dsns)
    if matches:
        outcomes.update(
            await service.act_batch(
                session, ctx.settings, tenant, inbox, folder, items, matches, prepared.verdicts, ctx.clock()
            )
        )
    if dsns:
        await warmup.record_reports(
            session, ctx.settings, [items[i].bounce for i in sorted(dsns)], ctx.clock()
        )
    if not warm:
        return []
    return await warmup.receive(session, ctx.settings, inbox, folder, warm, ctx.clock())
