"""A UID FETCH of many messages, as the reader drains a backlog with (`imap.fetch_messages`), against a real
Dovecot behind a TCP proxy: the answer is read whole and byte for byte, whatever parentheses and FETCH-like
lines the messages hold; a server that goes silent in the middle of the answer ends the command at the
client's timeout, and one that keeps sending, however slowly, is waited for."""

from __future__ import annotations

import asyncio
import time

import pytest
from aioimaplib.aioimaplib import CommandTimeout

from imail.mail import imap
from imail.mail.endpoint import Endpoint
from tests.fixtures.imap import DovecotServer
from tests.hardening.conftest import TcpProxy

MESSAGES = 40
PATIENCE = 60.0  # seconds a test waits for a command that must end long before


def message(n: int) -> bytes:
    # Unbalanced parentheses in a header and in the body, and a body line that looks like the head of a FETCH
    # answer: all inside the literal, none of them may end (or prolong) the command.
    return (
        f"From: lead{n}@prospect.test\r\nTo: me@example.com\r\nSubject: Re: ((offer {n}\r\n"
        f"Message-ID: <m{n}@prospect.test>\r\n\r\n"
        f"* {n} FETCH (UID {n} BODY[] {{12}}\r\nSounds good ((( {n}\r\n" + "x" * 1500 + "\r\n"
    ).encode()


@pytest.fixture
async def mailbox(dovecot: DovecotServer):  # noqa: F811
    user, password = f"fetch-{time.monotonic_ns()}@example.com", "imap-secret"
    dovecot.add_user(user, password)
    for n in range(1, MESSAGES + 1):
        dovecot.append(user, message(n))
    proxy = await TcpProxy("127.0.0.1", dovecot.port).start()
    try:
        yield proxy, Endpoint("127.0.0.1", proxy.port, "plain", user, password=password)
    finally:
        await proxy.close()


async def fetch_all(endpoint: Endpoint, *, inactivity: float) -> list[tuple[int, bytes]]:
    async with imap.imap_session(endpoint, allow_private=True, timeout=10) as client:
        status = await imap.examine(client, "INBOX", timeout=10)
        uids = await imap.uids_from(client, 1, timeout=10)
        assert status.exists == MESSAGES == len(uids)
        client.timeout = inactivity
        return await imap.fetch_messages(client, uids, timeout=600)


async def test_a_large_fetch_is_read_whole_and_exact(mailbox):
    _, endpoint = mailbox
    fetched = await asyncio.wait_for(fetch_all(endpoint, inactivity=10), PATIENCE)
    assert [uid for uid, _ in fetched] == list(range(1, MESSAGES + 1))
    for uid, raw in fetched:
        assert raw == message(uid)


async def test_a_server_silent_in_the_middle_of_the_answer_ends_the_command_at_the_client_timeout(mailbox):
    proxy, endpoint = mailbox

    async def fetch_then_silence() -> None:
        async with imap.imap_session(endpoint, allow_private=True, timeout=10) as client:
            await imap.examine(client, "INBOX", timeout=10)
            uids = await imap.uids_from(client, 1, timeout=10)
            client.timeout = 1.0
            proxy.silence(after=20_000)  # about a third of the answer
            await imap.fetch_messages(client, uids, timeout=600)

    with pytest.raises(CommandTimeout):
        await asyncio.wait_for(fetch_then_silence(), PATIENCE)


async def test_a_slow_answer_that_keeps_coming_is_waited_for_past_the_client_timeout(mailbox):
    proxy, endpoint = mailbox
    # About 75 KB at 1 KB every 20 ms: the answer takes well over a second, each piece far less.
    proxy.trickle(size=1024, every=0.02)
    started = time.monotonic()
    fetched = await asyncio.wait_for(fetch_all(endpoint, inactivity=1.0), PATIENCE)
    assert [uid for uid, _ in fetched] == list(range(1, MESSAGES + 1))
    assert time.monotonic() - started > 1.0  # the whole answer outlasted the client timeout


async def test_items_a_server_sends_after_the_message_belong_to_its_answer():
    """Gmail answers `* 1 FETCH (BODY[] {n}` then the message, then ` UID 7 FLAGS (\\Seen))`: the UID comes
    after the literal, on a line the command must still count as its own. Dovecot always sends the UID first,
    so this is Gmail's answer played by a scripted server on loopback."""
    bodies = {7: message(7), 9: message(9)}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1] Gimap ready\r\n")
        while line := await reader.readline():
            tag, _, command = line.decode().strip().partition(" ")
            verb = command.split(" ")[0].upper()
            if verb == "CAPABILITY":
                writer.write(b"* CAPABILITY IMAP4rev1\r\n")
            elif verb == "EXAMINE":
                writer.write(b"* 2 EXISTS\r\n* OK [UIDVALIDITY 3] UIDs valid\r\n* OK [UIDNEXT 10] next\r\n")
            elif verb == "UID" and "SEARCH" in command.upper():
                writer.write(b"* SEARCH 7 9\r\n")
            elif verb == "UID":  # FETCH
                for n, (uid, body) in enumerate(bodies.items(), start=1):
                    writer.write(
                        b"* %d FETCH (BODY[] {%d}\r\n%s UID %d FLAGS (\\Seen))\r\n"
                        % (n, len(body), body, uid)
                    )
            elif verb == "LOGOUT":
                writer.write(b"* BYE\r\n")
            writer.write(f"{tag} OK {verb} done\r\n".encode())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        endpoint = Endpoint("127.0.0.1", port, "plain", "me@gmail.test", password="secret")
        async with imap.imap_session(endpoint, allow_private=True, timeout=10) as client:
            await imap.examine(client, "INBOX", timeout=10)
            uids = await imap.uids_from(client, 1, timeout=10)
            fetched = await asyncio.wait_for(imap.fetch_messages(client, uids, timeout=600), PATIENCE)
    finally:
        server.close()
    assert fetched == sorted(bodies.items())
