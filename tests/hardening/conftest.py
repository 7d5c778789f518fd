"""Hardening fixtures: a TCP proxy the test can cut (in front of PostgreSQL), a private Redis the test can
kill and restart, and the loopback servers the fault, scale and security tests share."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.fixtures import services
from tests.fixtures.imap import dovecot, dovecot_session  # noqa: F401
from tests.fixtures.ports import free_port
from tests.fixtures.smtp import make_smtp_server, smtp_server, tls_cert  # noqa: F401
from tests.inboxes.conftest import mailbox, make_mailbox  # noqa: F401
from tests.sending.conftest import clock, outreach, settings, sink  # noqa: F401  (settings trust the test CA)


class TcpProxy:
    """Forwards loopback connections to `target`. `cut()` is an outage the driver really sees: every open
    connection is dropped, and new ones are refused ("refuse", a stopped server) or accepted and never
    answered ("blackhole", a network partition). `restore()` ends it."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = "forward"
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self._reply_budget: int | None = None  # bytes of the server's answers still passed on (`silence`)
        self._trickle: tuple[int, float] | None = None

    def silence(self, after: int) -> None:
        """The server's answers stop reaching the client after `after` more bytes, the connection left open:
        a server (or a link) that hangs in the middle of an answer."""
        self._reply_budget = after

    def trickle(self, size: int, every: float) -> None:
        """The server's answers reach the client `size` bytes at a time, one piece every `every` seconds: a
        slow link that never stops."""
        self._trickle = (size, every)

    async def start(self) -> TcpProxy:
        await self._listen()
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode != "forward":  # blackhole: hold the connection open, say nothing
            self._writers.add(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for src, dst, replies in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.create_task(self._pipe(src, dst, replies))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, replies: bool) -> None:
        try:
            while data := await src.read(65536):
                if replies and self._reply_budget is not None:
                    data, self._reply_budget = (
                        data[: self._reply_budget],
                        max(0, self._reply_budget - len(data)),
                    )
                size, every = (self._trickle if replies else None) or (len(data) or 1, 0.0)
                for start in range(0, len(data), size):
                    dst.write(data[start : start + size])
                    await dst.drain()
                    if every:
                        await asyncio.sleep(every)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._abort(dst)

    def _abort(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        transport = writer.transport
        if not transport.is_closing():
            transport.abort()  # an RST, as when the server process dies

    async def cut(self, mode: str = "refuse") -> None:
        assert mode in ("refuse", "blackhole")
        self.mode = mode
        server, self._server = (self._server, None) if mode == "refuse" else (None, self._server)
        if server is not None:
            server.close()
        for writer in list(self._writers):
            self._abort(writer)
        if server is not None:
            await server.wait_closed()
        if mode == "blackhole" and self._server is None:
            await self._listen()

    async def restore(self) -> None:
        for writer in list(self._writers):  # blackholed connections: the driver gave up on them already
            self._abort(writer)
        self.mode = "forward"
        if self._server is None:
            await self._listen()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            self._abort(writer)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def postgres_proxy(postgres_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A proxy in front of the run's PostgreSQL, and the run's database URL pointed through it."""
    url = make_url(postgres_url)
    proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    finally:
        await proxy.close()


class RedisServer:
    """A private `redis-server` on a free loopback port (no persistence), so a test may kill it and start it
    again on the same port without touching the shared Redis."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="imail-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            services.missing_service("redis-server")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} did not answer within {timeout} s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()
