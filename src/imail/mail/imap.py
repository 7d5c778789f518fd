"""IMAP over aioimaplib: connect (implicit TLS, STARTTLS or plain), log in (password or XOAUTH2). No database."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aioimaplib
from aioimaplib.aioimaplib import AUTH, Command

from imail.mail.endpoint import Endpoint, MailConnectionError, classify_os_error, describe, tls_context

SIDE = "imap"


def _words(response: aioimaplib.Response) -> str:
    """The server's own text of a tagged reply, e.g. `NO [AUTHENTICATIONFAILED] Authentication failed.`"""
    lines = [line.decode(errors="replace") if isinstance(line, bytes | bytearray) else str(line) for line in response.lines]
    text = " ".join(line.strip() for line in lines if line.strip())
    return f"{response.result} {text}".strip()


class _XOAuth2Command(Command):
    """AUTHENTICATE XOAUTH2 with the initial response. On a bad token the server (Gmail, Outlook, Dovecot) sends a
    continuation holding a JSON error and waits; RFC 7628 says answer with an empty line, then the NO follows.
    aioimaplib's own xoauth2() never answers, so a rejected token would hang until the timeout."""

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
    """RFC 3501 STARTTLS, which aioimaplib lacks: upgrade the transport in place, then re-read capabilities."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise MailConnectionError(SIDE, "tls", endpoint, "the server does not offer STARTTLS")
    response = await protocol.execute(Command("STARTTLS", protocol.new_tag(), loop=protocol.loop))
    if response.result != "OK":
        raise MailConnectionError(SIDE, "tls", endpoint, _words(response))
    loop = asyncio.get_running_loop()
    try:
        protocol.transport = await loop.start_tls(
            protocol.transport, protocol, tls_context(ca_file), server_hostname=endpoint.host
        )
    except (OSError, ConnectionError) as exc:
        raise MailConnectionError(SIDE, classify_os_error(exc), endpoint, describe(exc)) from exc
    await protocol.capability()


async def _connect_and_login(client: aioimaplib.IMAP4, endpoint: Endpoint, ca_file: str | None) -> None:
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


def _close(client: aioimaplib.IMAP4) -> None:
    transport = getattr(client.protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()
    task = getattr(client, "_client_task", None)
    if task is not None and not task.done():
        task.cancel()


@asynccontextmanager
async def imap_session(endpoint: Endpoint, *, timeout: float, ca_file: str | None = None) -> AsyncIterator[aioimaplib.IMAP4]:
    """An authenticated aioimaplib client (state AUTH); logged out on exit.

    Connecting and logging in are bounded by `timeout` as a whole; failures raise MailConnectionError.
    """
    if endpoint.security == "ssl":
        client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
            host=endpoint.host, port=endpoint.port, timeout=timeout, ssl_context=tls_context(ca_file)
        )
    else:
        client = aioimaplib.IMAP4(host=endpoint.host, port=endpoint.port, timeout=timeout)
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


async def check_login(endpoint: Endpoint, *, timeout: float, ca_file: str | None = None) -> None:
    """Connect, secure and log in for real, then log out; raises MailConnectionError with the server's words."""
    async with imap_session(endpoint, timeout=timeout, ca_file=ca_file):
        pass


# --- finding sent messages (resolving sends left in doubt by a crash) ----------------------------------

import re as _re  # noqa: E402

_LIST_LINE = _re.compile(rb'^\((?P<flags>[^)]*)\)\s+(?:"[^"]*"|NIL)\s+(?P<name>"(?:[^"\\]|\\.)*"|\S+)\s*$')
SENT_NAMES = ("sent", "sent items", "sent messages", "sent mail", "[gmail]/sent mail", "inbox.sent", "gesendet", "envoyés")


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sent_folders(list_lines: list[bytes]) -> list[str]:
    """Folders that hold sent mail: RFC 6154 `\\Sent` first, then the usual names."""
    special, named = [], []
    for line in list_lines:
        match = _LIST_LINE.match(line.strip()) if isinstance(line, bytes | bytearray) else None
        if not match:
            continue
        name = match.group("name").decode(errors="replace")
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if b"\\sent" in match.group("flags").lower():
            special.append(name)
        elif name.lower() in SENT_NAMES:
            named.append(name)
    return special + [n for n in named if n not in special]


async def find_in_sent(endpoint: Endpoint, message_ids: list[str], *, timeout: float, ca_file: str | None = None) -> set[str]:
    """Which of these Message-ID headers are in the account's Sent folder(s)."""
    found: set[str] = set()
    async with imap_session(endpoint, timeout=timeout, ca_file=ca_file) as client:
        async with asyncio.timeout(timeout):
            listing = await client.list('""', "*")
        for folder in sent_folders(listing.lines):
            async with asyncio.timeout(timeout):
                if (await client.examine(_quote(folder))).result != "OK":
                    continue
                for message_id in message_ids:
                    if message_id in found:
                        continue
                    response = await client.uid_search("HEADER", "Message-ID", _quote(message_id), charset=None)
                    if response.result == "OK" and any(line.strip() and line[:1].isdigit() for line in response.lines[:-1]):
                        found.add(message_id)
    return found
