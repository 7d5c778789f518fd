"""IMAP over aioimaplib: connect (implicit TLS, STARTTLS or plain), log in (password or XOAUTH2). No
database."""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import re as _re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass as _dataclass

import aioimaplib
from aioimaplib.aioimaplib import AUTH, Command, FetchCommand
from aioimaplib.aioimaplib import SELECTED as _SELECTED
from aioimaplib.aioimaplib import STOP_WAIT_SERVER_PUSH as _STOP_WAIT_SERVER_PUSH

from imail.mail.endpoint import (
    Endpoint,
    MailConnectionError,
    classify_os_error,
    connect_socket,
    describe,
    tls_context,
)

SIDE = "imap"


def _words(response: aioimaplib.Response) -> str:
    """The server's own text of a tagged reply, e.g. `NO [AUTHENTICATIONFAILED] Authentication failed.`"""
    lines = [
        line.decode(errors="replace") if isinstance(line, bytes | bytearray) else str(line)
        for line in response.lines
    ]
    text = " ".join(line.strip() for line in lines if line.strip())
    return f"{response.result} {text}".strip()


class _XOAuth2Command(Command):
    """AUTHENTICATE XOAUTH2 with the initial response. On a bad token the server (Gmail, Outlook, Dovecot)
    sends a continuation holding a JSON error and waits; RFC 7628 says answer with an empty line, then the NO
    follows. aioimaplib's own xoauth2() never answers, so a rejected token would hang until the timeout."""

    def __init__(self, protocol: aioimaplib.IMAP4ClientProtocol, user: str, token: str):
        self.sasl = base64.b64encode(f"user={user}\1auth=Bearer {token}\1\1".encode()).decode("ascii")
        super().__init__("AUTHENTICATE", protocol.new_tag(), "XOAUTH2", self.sasl, loop=protocol.loop)
        self._protocol = protocol
        self.challenge: str | None = None

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        if result == "Pending" and self.challenge is None and line.startswith(b"+"):
            raw = line[1:].strip()
            try:
                self.challenge = base64.b64decode(raw, validate=True).decode(errors="replace")
            except ValueError:
                self.challenge = raw.decode(errors="replace")
            self._protocol.transport.write(b"\r\n")
            return
        super().append_to_resp(line, result)


async def _xoauth2(client: aioimaplib.IMAP4, user: str, token: str) -> aioimaplib.Response:
    protocol = client.protocol
    command = _XOAuth2Command(protocol, user, token)
    # Scrub the whole SASL blob from aioimaplib's debug log: it is the token, base64-encoded.
    response = await protocol.execute(command, scrub=command.sasl)
    if response.result == "OK":
        async with protocol.state_condition:
            protocol.state = AUTH
            protocol.state_condition.notify_all()
    elif command.challenge:
        response.lines.append(f"(XOAUTH2 error: {command.challenge})".encode())
    return response


async def _starttls(client: aioimaplib.IMAP4, endpoint: Endpoint, ca_file: str | None) -> None:
    """RFC 3501 STARTTLS, which aioimaplib lacks: upgrade the transport in place, then re-read
    capabilities."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise MailConnectionError(SIDE, "tls", endpoint, "the server does not offer STARTTLS")
    response = await protocol.execute(Command("STARTTLS", protocol.new_tag(), loop=protocol.loop))
    if response.result != "OK":
        raise MailConnectionError(SIDE, "tls", endpoint, f"the server refused STARTTLS ({response.result})")
    loop = asyncio.get_running_loop()
    try:
        protocol.transport = await loop.start_tls(
            protocol.transport, protocol, tls_context(ca_file), server_hostname=endpoint.host
        )
    except (OSError, ConnectionError) as exc:
        raise MailConnectionError(SIDE, classify_os_error(exc), endpoint, describe(exc)) from exc
    await protocol.capability()


async def _connect_and_login(client: _PinnedIMAP4, endpoint: Endpoint, ca_file: str | None) -> None:
    """Greeting, STARTTLS and login; a server hanging up meanwhile fails at once (aioimaplib itself would wait
    for an answer on a closed connection until the timeout)."""
    login = asyncio.ensure_future(_greet_and_login(client, endpoint, ca_file))
    try:
        await asyncio.wait({login, client.lost}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        login.cancel()
        raise
    if login.done():
        login.result()
        return
    login.cancel()
    raise MailConnectionError(SIDE, "connect", endpoint, "the server closed the connection")


async def _greet_and_login(client: aioimaplib.IMAP4, endpoint: Endpoint, ca_file: str | None) -> None:
    try:
        await client.wait_hello_from_server()
    except aioimaplib.AioImapException as exc:
        raise MailConnectionError(SIDE, "protocol", endpoint, describe(exc)) from exc
    except (OSError, TimeoutError) as exc:
        raise MailConnectionError(SIDE, classify_os_error(exc), endpoint, describe(exc)) from exc
    if endpoint.security == "starttls":
        await _starttls(client, endpoint, ca_file)
    try:
        if endpoint.oauth_token is not None:
            response = await _xoauth2(client, endpoint.username, endpoint.oauth_token)
        else:
            response = await client.login(endpoint.username, endpoint.password or "")
    except aioimaplib.AioImapException as exc:
        raise MailConnectionError(SIDE, "protocol", endpoint, describe(exc)) from exc
    except OSError as exc:
        raise MailConnectionError(SIDE, classify_os_error(exc), endpoint, describe(exc)) from exc
    if response.result != "OK":
        raise MailConnectionError(SIDE, "auth", endpoint, _words(response))


class _PinnedIMAP4(aioimaplib.IMAP4):
    """aioimaplib's client on a connection of ours: the address policy is applied and the checked address
    dialled (see connect_socket), while TLS still verifies the certificate against the host name."""

    def __init__(self, endpoint: Endpoint, *, timeout: float, ssl_context, on_lost, allow_private: bool):
        self.endpoint = endpoint
        self.allow_private = allow_private
        self.lost: asyncio.Future = (
            asyncio.get_running_loop().create_future()
        )  # done once the connection is gone
        super().__init__(
            host=endpoint.host,
            port=endpoint.port,
            timeout=timeout,
            conn_lost_cb=on_lost,
            ssl_context=ssl_context,
        )

    def _connection_lost(
        self, exc: Exception | None, then: Callable[[Exception | None], None] | None
    ) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if then is not None:
            then(exc)

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context=None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = aioimaplib.IMAP4ClientProtocol(
            local_loop, lambda exc: self._connection_lost(exc, conn_lost_cb)
        )
        self._client_task = local_loop.create_task(self._dial(local_loop, ssl_context))

    async def _dial(self, loop: asyncio.AbstractEventLoop, ssl_context) -> tuple:
        sock = await connect_socket(self.endpoint, SIDE, allow_private=self.allow_private)
        try:
            return await loop.create_connection(
                lambda: self.protocol,
                sock=sock,
                ssl=ssl_context,
                server_hostname=self.endpoint.host if ssl_context is not None else None,
            )
        except BaseException:
            sock.close()
            raise


def _new_client(
    endpoint: Endpoint,
    *,
    timeout: float,
    ca_file: str | None,
    on_lost: Callable[[Exception | None], None] | None = None,
    allow_private: bool = False,
) -> _PinnedIMAP4:
    """The one place a client is made, for every security mode and every caller. Implicit TLS goes through
    aioimaplib.IMAP4 with an SSL context rather than IMAP4_SSL: the subclass takes no `conn_lost_cb`, so a
    keyword that works over plain text would fail only over TLS (it did: every 993 inbox was unreadable)."""
    return _PinnedIMAP4(
        endpoint,
        timeout=timeout,
        on_lost=on_lost,
        ssl_context=tls_context(ca_file) if endpoint.security == "ssl" else None,
        allow_private=allow_private,
    )


def _close(client: aioimaplib.IMAP4) -> None:
    transport = getattr(client.protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()
    task = getattr(client, "_client_task", None)
    if task is not None and not task.done():
        task.cancel()


@asynccontextmanager
async def imap_session(
    endpoint: Endpoint, *, timeout: float, ca_file: str | None = None, allow_private: bool = False
) -> AsyncIterator[aioimaplib.IMAP4]:
    """An authenticated aioimaplib client (state AUTH); logged out on exit.

    Connecting and logging in are bounded by `timeout` as a whole; failures raise MailConnectionError.
    Loopback and private addresses are dialled only with `allow_private` (IMAIL_MAIL_ALLOW_PRIVATE).
    """
    client = _new_client(endpoint, timeout=timeout, ca_file=ca_file, allow_private=allow_private)
    try:
        try:
            async with asyncio.timeout(timeout):
                await _connect_and_login(client, endpoint, ca_file)
        except TimeoutError as exc:
            raise MailConnectionError(SIDE, "timeout", endpoint, f"no answer within {timeout:g} s") from exc
        yield client
        try:
            async with asyncio.timeout(min(timeout, 5.0)):
                await client.logout()
        except (aioimaplib.AioImapException, OSError, TimeoutError):
            pass
    finally:
        _close(client)


async def check_login(
    endpoint: Endpoint, *, timeout: float, ca_file: str | None = None, allow_private: bool = False
) -> None:
    """Connect, secure and log in for real, then log out; raises MailConnectionError (a refused login in the
    server's words)."""
    async with imap_session(endpoint, timeout=timeout, ca_file=ca_file, allow_private=allow_private):
        pass


# --- finding sent messages (resolving sends left in doubt by a crash) ----------------------------------


_LIST_LINE = _re.compile(
    rb'^\((?P<flags>[^)]*)\)\s+(?P<delimiter>"(?:[^"\\]|\\.)*"|NIL)\s+(?P<name>"(?:[^"\\]|\\.)*"|\S+)\s*$'
)
# The personal namespace's prefix (aioimaplib hands the untagged line over without its `NAMESPACE` word)
_NAMESPACE = _re.compile(rb'^(?:NAMESPACE\s+)?\(\("(?P<prefix>(?:[^"\\]|\\.)*)"', _re.IGNORECASE)
# Matched case-insensitively, as listed or under the `INBOX` of Courier-style hosting (`INBOX.Sent Items`).
SENT_NAMES = (
    "sent",
    "sent items",
    "sent messages",
    "sent mail",
    "[gmail]/sent mail",
    "gesendet",
    "envoyés",
)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(token: bytes) -> str:
    text = token.decode(errors="replace")
    if text.startswith('"'):
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _folder_names(list_lines: list, flag: bytes, names: tuple[str, ...]) -> list[str]:
    """The selectable folders flagged `flag` (RFC 6154 special use) first, then those with one of `names`,
    as listed or below INBOX (the personal namespace of Courier and cPanel hosting is `INBOX.`)."""
    special, named = [], []
    for line in list_lines:
        match = _LIST_LINE.match(line.strip()) if isinstance(line, bytes | bytearray) else None
        if not match:
            continue
        flags = match.group("flags").lower()
        if b"\\noselect" in flags or b"\\nonexistent" in flags:
            continue
        name = _unquote(match.group("name"))
        delimiter = "" if match.group("delimiter") == b"NIL" else _unquote(match.group("delimiter"))
        lowered = name.lower()
        below_inbox = delimiter and lowered.startswith("inbox" + delimiter)
        if flag in flags:
            special.append(name)
        elif lowered in names or (below_inbox and lowered[len("inbox") + len(delimiter) :] in names):
            named.append(name)
    return special + [n for n in named if n not in special]


def sent_folders(list_lines: list) -> list[str]:
    """Folders that hold sent mail: RFC 6154 `\\Sent` first, then the usual names."""
    return _folder_names(list_lines, b"\\sent", SENT_NAMES)


async def _personal_prefix(client: aioimaplib.IMAP4) -> str:
    """Where a new top-level folder goes: the personal namespace's prefix (RFC 2342), `INBOX.` on Courier and
    cPanel hosting, where a folder outside it cannot be created. Asked without looking at the capabilities:
    most servers list NAMESPACE only after login (aioimaplib's namespace() would refuse), and one without it
    answers BAD."""
    protocol = client.protocol
    response = await protocol.execute(Command("NAMESPACE", protocol.new_tag(), loop=protocol.loop))
    if response.result != "OK":
        return ""
    for line in response.lines:
        if isinstance(line, bytes | bytearray) and (m := _NAMESPACE.match(line.strip())) is not None:
            return _unquote(b'"' + m.group("prefix") + b'"')
    return ""


async def find_in_sent(
    endpoint: Endpoint,
    message_ids: list[str],
    *,
    timeout: float,
    ca_file: str | None = None,
    allow_private: bool = False,
) -> set[str]:
    """Which of these Message-ID headers are in the account's Sent folder(s)."""
    found: set[str] = set()
    async with imap_session(
        endpoint, timeout=timeout, ca_file=ca_file, allow_private=allow_private
    ) as client:
        async with asyncio.timeout(timeout):
            listing = await client.list('""', "*")
        for folder in sent_folders(listing.lines):
            try:
                await examine(client, folder, timeout=timeout)  # read-only, and marks the folder selected
            except ImapCommandError:
                continue
            async with asyncio.timeout(timeout):
                for message_id in message_ids:
                    if message_id in found:
                        continue
                    response = await client.uid_search(
                        "HEADER", "Message-ID", _quote(message_id), charset=None
                    )
                    if response.result == "OK" and any(
                        line.strip() and line[:1].isdigit() for line in response.lines[:-1]
                    ):
                        found.add(message_id)
    return found


async def append_to_sent(
    endpoint: Endpoint,
    messages: list[bytes],
    *,
    timeout: float,
    ca_file: str | None = None,
    allow_private: bool = False,
) -> str:
    """APPEND these messages (the exact bytes sent), seen, to the account's Sent folder: RFC 6154 `\\Sent`,
    else one with a usual name, else a new `Sent` (in the personal namespace). Returns the folder's name."""
    async with imap_session(
        endpoint, timeout=timeout, ca_file=ca_file, allow_private=allow_private
    ) as client:
        async with asyncio.timeout(timeout):
            listing = await client.list('""', "*")
            folders = sent_folders(listing.lines)
            folder = folders[0] if folders else await _personal_prefix(client) + "Sent"
            if not folders:
                response = await client.create(_quote(folder))
                if response.result != "OK" and b"ALREADYEXISTS" not in b" ".join(
                    line for line in response.lines if isinstance(line, bytes | bytearray)
                ):
                    raise ImapCommandError("CREATE", response)
            for data in messages:
                response = await client.append(data, mailbox=_quote(folder), flags="(\\Seen)")
                if response.result != "OK":
                    raise ImapCommandError("APPEND", response)
    return folder


# --- reading mailboxes (the inbound reader: imail.intake) ---------------------------------------------


JUNK_NAMES = (
    "junk",
    "spam",
    "junk e-mail",
    "junk email",
    "junk mail",
    "bulk mail",
    "[gmail]/spam",
    "courrier indésirable",
    "spam-verdacht",
    "junk-e-mail",
    "correo no deseado",
    "posta indesiderata",
)
_UIDVALIDITY = _re.compile(rb"\[UIDVALIDITY (\d+)\]", _re.IGNORECASE)
_UIDNEXT = _re.compile(rb"\[UIDNEXT (\d+)\]", _re.IGNORECASE)
_EXISTS = _re.compile(rb"^(\d+) EXISTS\b", _re.IGNORECASE)
_FETCH_HEAD = _re.compile(rb"^\d+ FETCH \(", _re.IGNORECASE)
_FETCH_UID = _re.compile(rb"\bUID (\d+)", _re.IGNORECASE)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ImapCommandError(Exception):
    """The server answered NO or BAD to a command on an open session (a protocol problem, not a login
    problem)."""

    def __init__(self, command: str, response: aioimaplib.Response):
        self.command = command
        self.detail = _words(response)
        super().__init__(f"{command}: {self.detail}")


@_dataclass(frozen=True)
class FolderStatus:
    """What EXAMINE tells about a folder: UIDs are only comparable within one `uidvalidity`."""

    name: str
    uidvalidity: int
    uidnext: int | None  # None when the server does not say (then search for new UIDs instead)
    exists: int


async def open_client(
    endpoint: Endpoint,
    *,
    timeout: float,
    ca_file: str | None = None,
    on_lost: Callable[[Exception | None], None] | None = None,
    allow_private: bool = False,
) -> aioimaplib.IMAP4:
    """An authenticated client that the caller keeps (a pool) and ends with `close_client`. `on_lost` is
    called when the connection drops. Connecting and logging in are bounded by `timeout`; failures raise
    MailConnectionError."""
    client = _new_client(
        endpoint, timeout=timeout, ca_file=ca_file, on_lost=on_lost, allow_private=allow_private
    )
    try:
        async with asyncio.timeout(timeout):
            await _connect_and_login(client, endpoint, ca_file)
            # Servers may offer more once logged in (IDLE among them): read the capabilities again.
            await client.protocol.capability()
    except TimeoutError as exc:
        _close(client)
        raise MailConnectionError(SIDE, "timeout", endpoint, f"no answer within {timeout:g} s") from exc
    except aioimaplib.AioImapException as exc:
        _close(client)
        raise MailConnectionError(SIDE, "protocol", endpoint, describe(exc)) from exc
    except BaseException:
        _close(client)
        raise
    return client


async def close_client(client: aioimaplib.IMAP4, *, timeout: float = 5.0) -> None:
    """LOGOUT (briefly), then drop the connection whatever the answer."""
    try:
        if not getattr(client.protocol, "transport", None) or client.protocol.transport.is_closing():
            return
        if client.has_pending_idle():
            client.idle_done()
        async with asyncio.timeout(timeout):
            await client.logout()
    except (aioimaplib.AioImapException, OSError, TimeoutError, AttributeError):
        pass
    finally:
        _close(client)


def is_open(client: aioimaplib.IMAP4) -> bool:
    transport = getattr(client.protocol, "transport", None)
    return transport is not None and not transport.is_closing()


def junk_folders(list_lines: list) -> list[str]:
    """Folders that hold spam: RFC 6154 `\\Junk` first, then the usual names."""
    return _folder_names(list_lines, b"\\junk", JUNK_NAMES)


async def list_folders(client: aioimaplib.IMAP4, *, timeout: float) -> list:
    async with asyncio.timeout(timeout):
        response = await client.list('""', "*")
    if response.result != "OK":
        raise ImapCommandError("LIST", response)
    return list(response.lines)


async def examine(client: aioimaplib.IMAP4, folder: str, *, timeout: float) -> FolderStatus:
    """Open a folder read-only (EXAMINE: flags are never changed) and read its UIDVALIDITY and UIDNEXT."""
    protocol = client.protocol
    async with asyncio.timeout(timeout):
        response = await protocol.execute(
            Command("EXAMINE", protocol.new_tag(), _quote(folder), loop=protocol.loop)
        )
    if response.result != "OK":
        raise ImapCommandError("EXAMINE", response)
    async with (
        protocol.state_condition
    ):  # aioimaplib only tracks SELECT; EXAMINE selects too (RFC 3501 §6.3.2)
        protocol.state = _SELECTED
        protocol.state_condition.notify_all()
    uidvalidity = uidnext = None
    exists = 0
    for line in response.lines:
        if not isinstance(line, bytes | bytearray):
            continue
        if (m := _UIDVALIDITY.search(line)) is not None:
            uidvalidity = int(m.group(1))
        elif (m := _UIDNEXT.search(line)) is not None:
            uidnext = int(m.group(1))
        elif (m := _EXISTS.match(line)) is not None:
            exists = int(m.group(1))
    if uidvalidity is None:
        raise ImapCommandError("EXAMINE", aioimaplib.Response("NO", [b"no UIDVALIDITY in the answer"]))
    return FolderStatus(folder, uidvalidity, uidnext, exists)


def _uids(response: aioimaplib.Response) -> list[int]:
    found: set[int] = set()
    for line in response.lines[:-1]:
        if isinstance(line, bytes | bytearray):
            found.update(int(token) for token in line.split() if token.isdigit())
    return sorted(found)


async def uids_from(client: aioimaplib.IMAP4, first_uid: int, *, timeout: float) -> list[int]:
    """The UIDs at or above `first_uid`, ascending (`n:*` also names the last message when none is above:
    dropped)."""
    async with asyncio.timeout(timeout):
        response = await client.uid_search("UID", f"{max(1, first_uid)}:*", charset=None)
    if response.result != "OK":
        raise ImapCommandError("UID SEARCH", response)
    return [uid for uid in _uids(response) if uid >= first_uid]


async def uids_since(client: aioimaplib.IMAP4, day: _dt.date, *, timeout: float) -> list[int]:
    """The UIDs of messages that arrived (INTERNALDATE) on or after `day`, ascending."""
    stamp = f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"
    async with asyncio.timeout(timeout):
        response = await client.uid_search("SINCE", stamp, charset=None)
    if response.result != "OK":
        raise ImapCommandError("UID SEARCH", response)
    return _uids(response)


def uid_set(uids: list[int]) -> str:
    """`1:3,7,9:10` for [1, 2, 3, 7, 9, 10]."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = previous = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(ranges)


def parse_fetch(lines: list) -> list[tuple[int, bytes]]:
    """(UID, raw message) pairs from the lines of a `UID FETCH … (UID BODY.PEEK[])` answer."""
    found: list[tuple[int, bytes]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not isinstance(line, bytes) or not _FETCH_HEAD.match(line):
            continue
        uid_match = _FETCH_UID.search(line)
        data: bytes | None = None
        if index < len(lines) and isinstance(lines[index], bytearray):
            data = bytes(lines[index])
            index += 1
            if uid_match is None and index < len(lines) and isinstance(lines[index], bytes):
                uid_match = _FETCH_UID.search(lines[index])  # `BODY[] {n} … UID 7)` after the literal
        if uid_match is not None and data is not None:
            found.append((int(uid_match.group(1)), data))
    return found


class _UidFetchCommand(FetchCommand):
    """aioimaplib's UID FETCH, told complete and timed out the same way at a cost linear in the answer's
    length. Its own `wait_data` rescans every line received so far at each new line (quadratic in the number
    of messages fetched at once), and every line cancels the inactivity timer and schedules a new one; in a
    backlog's drain the two cost the worker more CPU than the FETCH's I/O. Here the parentheses still open
    since the last `* n FETCH (` line are counted as lines arrive, and a line only moves the deadline, which
    the one timer checks when it fires."""

    def __init__(
        self, protocol: aioimaplib.IMAP4ClientProtocol, uids: str, parts: str, timeout: float | None
    ):
        self._open_parentheses = 0
        self._deadline = 0.0
        super().__init__(protocol.new_tag(), uids, parts, prefix="UID", loop=protocol.loop, timeout=timeout)

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        super().append_to_resp(line, result)
        if isinstance(line, bytes):  # the literals are bytearrays: their parentheses don't count
            if self.FETCH_MESSAGE_DATA_RE.match(line):
                self._open_parentheses = 0
            self._open_parentheses += line.count(b"(") - line.count(b")")

    def wait_data(self) -> bool:
        return self._open_parentheses != 0

    def _set_timer(self) -> None:
        if self._timeout is not None:
            self._deadline = self._loop.time() + self._timeout
            self._timer = self._loop.call_at(self._deadline, self._on_deadline)

    def _reset_timer(self) -> None:
        if self._timeout is not None:
            self._deadline = self._loop.time() + self._timeout

    def _on_deadline(self) -> None:
        if self._loop.time() < self._deadline:  # a line came since: wait until the moved deadline
            self._timer = self._loop.call_at(self._deadline, self._on_deadline)
        else:
            self._timeout_callback()


async def fetch_messages(
    client: aioimaplib.IMAP4, uids: list[int], *, timeout: float
) -> list[tuple[int, bytes]]:
    """The raw messages with these UIDs, ascending; BODY.PEEK so nothing is marked \\Seen. Expunged ones are
    absent. `timeout` bounds the whole command; the client's own timeout, the time the server may stay
    silent, applies too."""
    if not uids:
        return []
    command = _UidFetchCommand(client.protocol, uid_set(uids), "(UID BODY.PEEK[])", client.timeout)
    async with asyncio.timeout(timeout):
        response = await client.protocol.execute(command)
    if response.result != "OK":
        raise ImapCommandError("UID FETCH", response)
    wanted = set(uids)
    return sorted((uid, data) for uid, data in parse_fetch(response.lines) if uid in wanted)


async def idle_start(client: aioimaplib.IMAP4, *, timeout: float, refresh: float) -> asyncio.Future:
    """Enter IDLE on the selected folder; the future ends when IDLE does. After `refresh` seconds aioimaplib
    queues a stop marker for `wait_push` (RFC 2177: re-issue IDLE at least every 29 minutes)."""
    async with asyncio.timeout(timeout):
        return await client.idle_start(timeout=refresh)


async def wait_push(client: aioimaplib.IMAP4, *, timeout: float) -> list[bytes] | None:
    """The next untagged lines the server pushed during IDLE, or None when the refresh time came (or
    `timeout`)."""
    try:
        pushed = await client.wait_server_push(timeout=timeout)
    except TimeoutError:
        return None
    if pushed == _STOP_WAIT_SERVER_PUSH:
        return None
    return [bytes(line) for line in pushed if isinstance(line, bytes | bytearray)]


def announces_new_mail(lines: list[bytes]) -> bool:
    return any(_EXISTS.match(bytes(line)) for line in lines)


async def idle_stop(client: aioimaplib.IMAP4, idle: asyncio.Future, *, timeout: float) -> None:
    """Leave IDLE (DONE) and wait for the server's answer; pushes not yet read are dropped."""
    if client.has_pending_idle():
        client.idle_done()
    try:
        async with asyncio.timeout(timeout):
            await idle
    finally:
        queue = client.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()


async def file_messages(
    client: aioimaplib.IMAP4,
    folder: str,
    uids: list[int],
    *,
    flags: tuple[str, ...],
    move: list[int],
    destination: str,
    timeout: float,
) -> None:
    """Open `folder` read-write, add `flags` to `uids`, then move `move` (a subset) to `destination`: UID MOVE
    (RFC 6851) where offered, else COPY, \\Deleted and UID EXPUNGE (RFC 4315) or, lacking that, EXPUNGE."""
    protocol = client.protocol
    async with asyncio.timeout(timeout):
        response = await protocol.execute(
            Command("SELECT", protocol.new_tag(), _quote(folder), loop=protocol.loop)
        )
        if response.result != "OK":
            raise ImapCommandError("SELECT", response)
        async with protocol.state_condition:
            protocol.state = _SELECTED
            protocol.state_condition.notify_all()
        if uids:
            response = await client.uid("store", uid_set(uids), "+FLAGS.SILENT", f"({' '.join(flags)})")
            if response.result != "OK":
                raise ImapCommandError("UID STORE", response)
        if not move:
            return
        moving = uid_set(move)
        if client.has_capability("MOVE"):
            response = await client.uid("move", moving, _quote(destination))
            if response.result != "OK":
                raise ImapCommandError("UID MOVE", response)
            return
        response = await client.uid("copy", moving, _quote(destination))
        if response.result != "OK":
            raise ImapCommandError("UID COPY", response)
        response = await client.uid("store", moving, "+FLAGS.SILENT", "(\\Deleted)")
        if response.result != "OK":
            raise ImapCommandError("UID STORE", response)
        response = await (
            client.uid("expunge", moving) if client.has_capability("UIDPLUS") else client.expunge()
        )
        if response.result != "OK":
            raise ImapCommandError("EXPUNGE", response)
