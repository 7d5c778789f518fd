#!/usr/bin/env python3
"""Connection-monitor benchmark: how fast the monitor re-checks inboxes (real SMTP + IMAP logins).

In one run, against a local aiosmtpd (STARTTLS + AUTH, in its own process) and a local Dovecot (STARTTLS),
both reached through a TCP proxy (another process) that delays every chunk by RTT/2 each way, like a mail
provider across a network (--rtt 0: raw loopback), on a throwaway SQLite database with N live inboxes:

  baseline  one inbox after the other: decrypt, SMTP login, IMAP login (what a naive loop would do)
  measured  `check_due_inboxes` as the worker runs it: claim a batch of 20 in one transaction, log in to all
            of them at once, write the outcomes (status, events) in one transaction; repeated until none is
            due

Prints inbox checks per second for both and the ratio, plus the latency of one check.

    .venv/bin/python bench/inbox_monitor.py                # 60 inboxes, 20 ms round trips
    .venv/bin/python bench/inbox_monitor.py -n 200 --rtt 0
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.fixtures.certs import make_self_signed
from tests.fixtures.imap import DovecotServer, dovecot_available
from tests.fixtures.smtp import SmtpServer

from imail.config import Settings
from imail.db import Database
from imail.inboxes.monitor import check_due_inboxes, probe
from imail.kit import crypto
from imail.kit.clock import utcnow
from imail.migrations import upgrade
from imail.models import Inbox
from imail.workers.context import WorkerContext
from imail.workspaces.service import create_workspace


def _serve_smtp(cert, users: dict[str, str], port_out) -> None:
    """Child process: aiosmtpd with these users, until killed."""
    server = SmtpServer(security="starttls", cert=cert)
    for user, password in users.items():
        server.add_user(user, password)
    server.start()
    port_out.send(server.port)
    while True:
        time.sleep(3600)


def _serve_proxy(targets: list[int], delay: float, ports_out) -> None:
    """Child process: one listener per target port; every chunk is forwarded after `delay` seconds."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def run() -> None:
        servers, ports = [], []
        for target in targets:

            async def handle(reader, writer, target=target):
                try:
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
                except OSError:
                    writer.close()
                    return
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            servers.append(server)
            ports.append(server.sockets[0].getsockname()[1])
        ports_out.send(ports)
        await asyncio.Event().wait()

    asyncio.run(run())


async def main(count: int, rtt_ms: float) -> None:
    if not dovecot_available():
        sys.exit("dovecot is not installed: run .ci/packages")
    work = Path(tempfile.mkdtemp(prefix="imail-bench-inbox-"))
    cert = make_self_signed(work / "tls")
    users = {f"bench{i}@example.com": (f"s{i}", f"i{i}") for i in range(count)}
    imap = DovecotServer(cert)
    imap.start()
    for email, (_, imap_password) in users.items():
        imap.add_user(email, imap_password)
    spawn = multiprocessing.get_context("spawn")
    receive, send = spawn.Pipe(duplex=False)
    smtp_process = spawn.Process(
        target=_serve_smtp, args=(cert, {e: p[0] for e, p in users.items()}, send), daemon=True
    )
    smtp_process.start()
    smtp_port = receive.recv()
    proxy_process = spawn.Process(
        target=_serve_proxy, args=([smtp_port, imap.port], rtt_ms / 2000, send), daemon=True
    )
    proxy_process.start()
    smtp_via, imap_via = receive.recv()
    url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        database_url=url,
        secret_key="bench-secret-key-0123456789-abcdefghijklmnop",
        mail_ca_file=str(cert.ca_file),
        mail_timeout=10.0,
        redis_url=None,
    )
    database = Database(settings)
    box = crypto.secret_box(settings)
    try:
        async with database.transaction() as session:
            workspace = (await create_workspace(session, "Bench", "surge", None, None)).workspace
        inboxes = []
        async with database.transaction() as session:
            for email, (smtp_password, imap_password) in users.items():
                inbox = Inbox(
                    workspace_id=workspace.id,
                    livemode=True,
                    email=email,
                    status="connected",
                    smtp_host="127.0.0.1",
                    smtp_port=smtp_via,
                    smtp_security="starttls",
                    smtp_username=email,
                    smtp_password_encrypted=box.encrypt(smtp_password),
                    imap_host="127.0.0.1",
                    imap_port=imap_via,
                    imap_security="starttls",
                    imap_username=email,
                    imap_password_encrypted=box.encrypt(imap_password),
                )
                session.add(inbox)
                inboxes.append(inbox)
        async with httpx.AsyncClient() as http:
            ctx = WorkerContext(settings, database, None, http, "bench")
            await probe(inboxes[0], settings, http)  # warm-up (TLS contexts, Dovecot processes)

            latencies = []
            started = time.perf_counter()
            for inbox in inboxes:
                t0 = time.perf_counter()
                outcome = await probe(inbox, settings, http)
                latencies.append(time.perf_counter() - t0)
                assert outcome.ok, outcome.detail
            baseline = time.perf_counter() - started

            now = utcnow() + timedelta(seconds=settings.inbox_check_interval + 1)
            started = time.perf_counter()
            checked = 0
            while (done := await check_due_inboxes(ctx, now)) > 0:
                checked += done
            measured = time.perf_counter() - started
            assert checked == count, checked
    finally:
        await database.dispose()
        for process in (smtp_process, proxy_process):
            process.kill()
            process.join(5)
        imap.cleanup()

    print(
        f"inboxes: {count}  (aiosmtpd STARTTLS + Dovecot STARTTLS behind a {rtt_ms:g} ms RTT proxy, SQLite)"
    )
    print(
        f"one check (SMTP + IMAP login, sequential): p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    print(f"baseline  sequential probes        {count / baseline:8.1f} checks/s  ({baseline:.2f} s)")
    print(f"measured  check_due_inboxes (x20)  {count / measured:8.1f} checks/s  ({measured:.2f} s)")
    print(f"ratio     {baseline / measured:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=60)
    parser.add_argument(
        "--rtt", type=float, default=20.0, help="simulated round trip to the mail servers, ms"
    )
    args = parser.parse_args()
    asyncio.run(main(args.count, args.rtt))
