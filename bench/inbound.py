#!/usr/bin/env python3
"""Inbound benchmark: messages processed per second by the IMAP reader against a bare aioimaplib FETCH of the
same mailbox, in one run.

A local Dovecot (plain IMAP on loopback) holds N messages (default 10,000) placed with IMAP APPEND: replies to
our emails (interested, not interested, unsubscribe requests, out-of-office auto-replies), RFC 3464 reports
(5.1.1 hard, 4.2.2 soft, delivered) and mail from nobody we wrote to. The database (a throwaway SQLite file,
or PostgreSQL with --postgres ADMIN_URL) holds the campaign those emails answer: one inbox, N/4 leads, one
sent email each.

  baseline  aioimaplib alone: log in, EXAMINE INBOX, UID FETCH (UID BODY.PEEK[]) in batches of --batch,
            nothing more
  measured  the inbound worker (`read_inboxes`, one WorkerContext) from an empty cursor until it has read
            everything: the same FETCHes, plus parsing, bounce / auto-reply detection, matching,
            classification, and for each batch one transaction with the replies rows, receipts, events,
            lead/sequence changes, suppressions and the cursor advance

The baseline runs before and after the measured run; the ratio uses their mean. CPU seconds of the worker's
process, of its parsing processes and of every postgres process during the measured run are given per
message. The worker measured is one that has run a while: its parsing processes (imail.intake.parser_pool)
are up; a fresh worker starts them with its first large chunk and parses in its event loop meanwhile (about
a second).

With --others K (the backlog phase), K other inboxes of their own campaigns are read by the same worker, with
IDLE on, as in production (both runs keep production's pass budget: `inbound_max_messages`, and
`inbound_pass_seconds` past it while a read slot is free). Once the drain has started,
one reply is APPENDed to each of them, --others-gap seconds apart; the figures add the time from each APPEND
to its replies row committed (p50, p99, max) and how many of them landed before the backlog was drained.

    .venv/bin/python bench/inbound.py                 # 10,000 messages, SQLite
    .venv/bin/python bench/inbound.py -n 2000 --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/inbound.py -n 10000 --others 50 --postgres ADMIN_URL    # the backlog phase
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import aioimaplib
import httpx
from sqlalchemy import bindparam, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from tests.fixtures.certs import make_self_signed
from tests.fixtures.databases import create_postgres_database, create_sqlite_database, drop_postgres_database
from tests.fixtures.imap import DovecotServer, dovecot_available
from tests.fixtures.inbound import dsn, make_outreach, newsletter, out_of_office, reply

from imail.config import Settings
from imail.db import Database
from imail.intake.service import Fetched
from imail.kit.clock import utcnow
from imail.mail.imap import parse_fetch, uid_set
from imail.mail.mime import make_message_id
from imail.replies.verdict import assess
from imail.wiring import install_subscribers
from imail.workers.context import WorkerContext
from imail.workers.imap_reader import inbound_pool, read_inboxes
from imail.workspaces.service import create_workspace
from sending import postgres_cpu, proc_cpu

TEXTS = [
    "Sounds interesting, I would love to learn more. Can we talk next week?",
    "Not interested, thanks.",
    "Please remove me from your list.",
    "I'm not the right person for this, try our head of sales.",
    "Booked a slot in your calendar for Thursday.",
    "Danke, aber kein Interesse.",
    "Merci, nous sommes déjà équipés.",
]


def mailbox(outreach, count: int, seed: int = 7) -> list[bytes]:
    """A mix: 55% replies, 10% out-of-office, 25% delivery reports, 10% unrelated mail."""
    rng = random.Random(seed)
    to = outreach.inbox_email
    back_on = date.today() + timedelta(days=9)
    made: list[bytes] = []
    for _ in range(count):
        lead = rng.choice(outreach.leads)
        roll = rng.random()
        if roll < 0.55:
            made.append(reply(lead.header, from_email=lead.email, to_email=to, text=rng.choice(TEXTS)))
        elif roll < 0.65:
            made.append(out_of_office(lead.header, from_email=lead.email, to_email=to, back_on=back_on))
        elif roll < 0.90:
            status = rng.choice(["5.1.1", "4.2.2", "2.0.0"])
            made.append(dsn(lead.header, recipient=lead.email, to_email=to, status=status))
        else:
            made.append(newsletter(to))
    return made


def fill(
    server: DovecotServer, user: str, password: str, messages: list[bytes], connections: int = 4
) -> float:
    """APPEND every message, over a few connections at once (set-up, not measured)."""
    from concurrent.futures import ThreadPoolExecutor

    def append(chunk: list[bytes]) -> None:
        client = imaplib.IMAP4(server.host, server.port, timeout=30)
        client.login(user, password)
        try:
            for message in chunk:
                status, detail = client.append("INBOX", None, None, message)
                if status != "OK":
                    raise RuntimeError(f"APPEND failed: {detail}")
        finally:
            client.logout()

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(append, [messages[i::connections] for i in range(connections)]))
    return time.perf_counter() - started


async def bare_fetch(
    server: DovecotServer, user: str, password: str, batch: int
) -> tuple[list[bytes], float]:
    """(messages fetched, seconds): the IMAP work alone."""
    started = time.perf_counter()
    client = aioimaplib.IMAP4(host=server.host, port=server.port, timeout=60)
    await client.wait_hello_from_server()
    await client.login(user, password)
    await client.select(
        "INBOX"
    )  # aioimaplib's EXAMINE doesn't enter the selected state; SELECT with PEEK is the same read
    response = await client.uid_search("ALL", charset=None)
    uids = sorted({int(t) for line in response.lines[:-1] for t in bytes(line).split() if t.isdigit()})
    fetched: list[bytes] = []
    for i in range(0, len(uids), batch):
        answer = await client.uid("fetch", uid_set(uids[i : i + batch]), "(UID BODY.PEEK[])")
        fetched += [data for _, data in parse_fetch(answer.lines)]
    await client.logout()
    return fetched, time.perf_counter() - started


async def parse_and_classify(raws: list[bytes]) -> float:
    """Seconds for the reader's per-message CPU work alone (parse, bounce and auto-reply detection,
    classification of everything that is not a bounce), no IMAP and no database: where the rest of the time
    goes."""
    started = time.perf_counter()
    for raw in raws:
        item = Fetched.read(0, raw)
        if not item.bounce.is_bounce:
            await assess(item.message)
    return time.perf_counter() - started


def parsing_cpu() -> float:
    """CPU seconds of this process's Python children: the reader's parsing processes (Dovecot, also started
    from here, is not one)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        if int(rest.split()[1]) == os.getpid() and name.startswith("python"):
            total += proc_cpu(int(entry))
    return total


@dataclass
class Measured:
    seconds: float  # from an empty cursor to the backlog's last message acted on
    iterations: int
    worker_cpu: float  # CPU seconds of this process meanwhile
    postgres_cpu: float
    parsing_cpu: float  # CPU seconds of the worker's parsing children (imail.intake.parser_pool)
    latencies: list[float] = field(default_factory=list)  # --others: APPEND → replies row, seconds
    before_drained: int = 0  # --others: replies recorded before the backlog was drained


async def measured(settings: Settings, database: Database) -> Measured:
    """The worker from an empty cursor to the end of the mailbox."""
    http = httpx.AsyncClient()
    ctx = WorkerContext(settings, database, None, http, "bench-inbound")
    iterations = 0
    await inbound_pool(ctx).parser.start()  # a worker that has run a while (see the module's docstring)
    cpu, pg, children = time.process_time(), postgres_cpu(), parsing_cpu()
    started = time.perf_counter()
    try:
        while True:
            iterations += 1
            done = await read_inboxes(ctx)
            if not done:
                break
        elapsed = time.perf_counter() - started
        used = Measured(
            elapsed,
            iterations,
            time.process_time() - cpu,
            postgres_cpu() - pg,
            parsing_cpu() - children,  # while the children live: they end with the pool
        )
    finally:
        await inbound_pool(ctx).close()
        await http.aclose()
    return used


async def measured_with_others(
    settings: Settings,
    database: Database,
    server: DovecotServer,
    backlog_inbox: str,
    total: int,
    others: list,
    gap: float,
) -> Measured:
    """The worker loop as `imail worker` runs it (an iteration that found nothing waits a second), while
    replies are APPENDed to the other inboxes; until the backlog is drained and every reply recorded."""
    http = httpx.AsyncClient()
    ctx = WorkerContext(settings, database, None, http, "bench-inbound")
    appended: dict[str, float] = {}
    seen: dict[str, float] = {}
    drained: list[float] = []
    finished = asyncio.Event()
    rng = random.Random(11)

    async def scalar(query: str, **params):
        async with database.engine.connect() as conn:
            return (await conn.execute(text(query), params)).scalar_one()

    async def appender() -> None:
        # Once every other inbox IDLEs (read once) and the drain has started: one reply each, spread.
        while not finished.is_set():
            idle = await scalar("SELECT count(*) FROM mailbox_polls WHERE idle")
            cursor = await scalar(
                "SELECT coalesce(max(last_uid), 0) FROM mailbox_cursors WHERE inbox_id = :i", i=backlog_inbox
            )
            if idle >= len(others) and cursor > 0:
                break
            await asyncio.sleep(0.05)
        for outreach in rng.sample(others, len(others)):
            lead = outreach.leads[0]
            header = make_message_id("prospect.test")
            raw = reply(lead.header, from_email=lead.email, to_email=outreach.inbox_email, message_id=header)
            put = time.perf_counter()  # the APPEND's own time counts in the latency
            await asyncio.to_thread(server.append, outreach.inbox_email, raw)
            appended[header] = put
            await asyncio.sleep(gap)

    async def watcher() -> None:
        query = text("SELECT rfc_message_id FROM replies WHERE rfc_message_id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        while len(seen) < len(others) or not drained:
            pending = [h for h in appended if h not in seen]
            if pending:
                async with database.engine.connect() as conn:
                    for (header,) in (await conn.execute(query, {"ids": pending})).all():
                        seen[header] = time.perf_counter()
            if not drained:
                cursor = await scalar(
                    "SELECT coalesce(max(last_uid), 0) FROM mailbox_cursors WHERE inbox_id = :i",
                    i=backlog_inbox,
                )
                if cursor >= total:
                    drained.append(time.perf_counter())
            await asyncio.sleep(0.02)
        finished.set()

    async def worker() -> int:
        iterations = 0
        while not finished.is_set():
            iterations += 1
            if not await read_inboxes(ctx):
                try:
                    await asyncio.wait_for(finished.wait(), 1.0)
                except TimeoutError:
                    pass
        return iterations

    await inbound_pool(ctx).parser.start()  # a worker that has run a while (see the module's docstring)
    cpu, pg, children = time.process_time(), postgres_cpu(), parsing_cpu()
    started = time.perf_counter()
    try:
        iterations, _, _ = await asyncio.gather(worker(), appender(), watcher())
        worker_cpu, pg_cpu, children_cpu = (
            time.process_time() - cpu,
            postgres_cpu() - pg,
            parsing_cpu() - children,
        )
    finally:
        await inbound_pool(ctx).close()
        await http.aclose()
    return Measured(
        drained[0] - started,
        iterations,
        worker_cpu,
        pg_cpu,
        children_cpu,
        latencies=sorted(seen[h] - appended[h] for h in appended),
        before_drained=sum(1 for at in seen.values() if at <= drained[0]),
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def table_counts(database: Database) -> dict[str, int]:
    counts = {}
    async with database.engine.connect() as conn:
        for name in ("replies", "inbound_receipts", "events", "suppressions"):
            counts[name] = (await conn.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one()
        rows = await conn.execute(text("SELECT type, count(*) FROM events GROUP BY type ORDER BY type"))
        counts.update({f"events:{t}": n for t, n in rows.all()})
        counts["cursor"] = (
            await conn.execute(text("SELECT max(last_uid) FROM mailbox_cursors"))
        ).scalar_one()
    return counts


def write_results(text_block: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    section = "## Inbound\n\n"
    pattern = re.compile(r"^## Inbound\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(current):
        updated = pattern.sub(lambda _: section + text_block + "\n\n", current)
    else:
        updated = current.rstrip("\n") + "\n\n" + section + text_block + "\n"
    path.write_text(updated)


async def run(args: argparse.Namespace, server: DovecotServer, url: str) -> str:
    settings = Settings(
        database_url=url,
        secret_key="bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        redis_url=None,
        mail_timeout=30.0,
        mail_allow_private=True,  # the bench's Dovecot is on loopback
        inbound_fetch_batch=args.batch,
        # Production's pass budget (inbound_max_messages, inbound_pass_seconds) in both runs; the throughput
        # run without IDLE (one inbox, read until drained).
        **({} if args.others else {"inbound_idle": False}),
    )
    database = Database(settings)
    try:
        async with database.transaction() as session:
            workspace = (await create_workspace(session, "Bench", "surge")).workspace.id
        leads = max(1, args.messages // 4)
        outreach = await make_outreach(
            database,
            settings,
            workspace,
            imap_port=server.port,
            imap_security="none",
            leads=leads,
            now=utcnow(),
        )
        server.add_user(outreach.inbox_email, outreach.imap_password)
        others = []
        for _ in range(args.others):
            other = await make_outreach(
                database,
                settings,
                workspace,
                imap_port=server.port,
                imap_security="none",
                leads=1,
                now=utcnow(),
            )
            server.add_user(other.inbox_email, other.imap_password)
            others.append(other)
        messages = mailbox(outreach, args.messages)
        fill_seconds = fill(server, outreach.inbox_email, outreach.imap_password, messages)
        print(
            f"mailbox: {len(messages)} messages appended in {fill_seconds:.1f} s; {leads} leads; "
            f"database: {'PostgreSQL' if args.postgres else 'SQLite'}"
        )

        base_before = await bare_fetch(server, outreach.inbox_email, outreach.imap_password, args.batch)
        if others:
            run_ = await measured_with_others(
                settings, database, server, outreach.inbox_id, args.messages, others, args.others_gap
            )
        else:
            run_ = await measured(settings, database)
        seconds, iterations = run_.seconds, run_.iterations
        base_after = await bare_fetch(server, outreach.inbox_email, outreach.imap_password, args.batch)
        cpu_seconds = await parse_and_classify(base_after[0])
        counts = await table_counts(database)
    finally:
        await database.dispose()

    processed = args.messages if args.others else counts["cursor"] or 0
    assert len(base_before[0]) == len(base_after[0]) == args.messages, (
        len(base_before[0]),
        len(base_after[0]),
    )
    assert processed == args.messages, f"the reader stopped at UID {processed}"
    baseline_rate = (len(base_before[0]) / base_before[1] + len(base_after[0]) / base_after[1]) / 2
    rate = processed / seconds
    cpu_rate = processed / cpu_seconds
    ratio = rate / baseline_rate
    database_name = "PostgreSQL" if args.postgres else "SQLite"
    events = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in counts.items() if k.startswith("events:"))
    lines = [
        (
            f"- mailbox: {args.messages} messages in Dovecot's INBOX (55% replies, 10% out-of-office, 25% "
            "RFC 3464 "
            f"reports, 10% unrelated); database {database_name}; FETCH batch {args.batch}; written: "
            f"{counts['replies']} replies rows, {counts['inbound_receipts']} receipts, {counts['events']} "
            "events"
        ),
        (
            f"- baseline, bare aioimaplib UID FETCH (mean of before/after): {baseline_rate:,.0f} messages/s "
            f"({base_before[1]:.2f} s / {base_after[1]:.2f} s)"
        ),
        f"- measured, the inbound worker `read_inboxes` ({iterations} iterations): {rate:,.0f} messages/s "
        f"({seconds:.2f} s) = {rate / cpu_rate:.0%} of the CPU floor below; CPU per message: worker "
        f"{run_.worker_cpu / processed * 1000:.2f} ms + its parsing processes "
        f"{run_.parsing_cpu / processed * 1000:.2f} ms, "
        f"postgres {run_.postgres_cpu / processed * 1000:.2f} ms",
        f"- ratio: {ratio:.1%} (target ≥ 50%)"
        + (" — analytics rollups skipped (attribution run)" if args.no_rollups else ""),
        (
            "- for reference, the per-message CPU work alone (parse, bounce/auto-reply detection, "
            "classify; no IMAP, "
            f"no database): {cpu_rate:,.0f} messages/s ({cpu_seconds:.2f} s)"
        ),
        f"- events: {events}",
    ]
    if run_.latencies:
        lines.append(
            f"- backlog phase: {len(run_.latencies)} other inboxes (IDLE, pass budget "
            f"{settings.inbound_max_messages} messages, {settings.inbound_pass_seconds:g} s past it while a "
            f"slot is free), one reply each APPENDed every {args.others_gap} s during the "
            f"drain; APPEND → replies row: p50 {percentile(run_.latencies, 0.5):.2f} s, p99 "
            f"{percentile(run_.latencies, 0.99):.2f} s, max {max(run_.latencies):.2f} s; "
            f"{run_.before_drained} recorded before the backlog was drained"
        )
    lines += [
        f"- reproduce: `.venv/bin/python bench/inbound.py -n {args.messages}"
        + (" --postgres ADMIN_URL" if args.postgres else "")
        + (" --no-rollups" if args.no_rollups else "")
        + (f" --others {args.others}" if args.others else "")
        + "`",
        f"- load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]
    return "\n".join(lines)


def main() -> None:
    install_subscribers()  # events recorded here owe deliveries and rollups, as in the app (imail.wiring)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100, help="messages per FETCH (and per transaction)")
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="use a throwaway PostgreSQL database")
    parser.add_argument("--write", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument("--others", type=int, default=0, help="the backlog phase: this many other inboxes")
    parser.add_argument("--others-gap", type=float, default=0.1, help="seconds between their replies")
    parser.add_argument(
        "--no-rollups",
        action="store_true",
        help="attribution only: skip the analytics rollups record_event maintains",
    )
    args = parser.parse_args()
    if args.no_rollups:
        import imail.events.service as events_service

        async def no_rollups(*_args, **_kwargs) -> None:
            return None

        events_service.apply_rollups = no_rollups  # type: ignore[attr-defined]
    if not dovecot_available():
        raise SystemExit("dovecot is not installed (run .ci/packages)")
    workdir = Path(tempfile.mkdtemp(prefix="imail-bench-inbound-"))
    server = DovecotServer(make_self_signed(workdir))
    # Filling the mailbox is set-up, not measured: don't fsync each APPEND (the reads are the same either
    # way).
    server.config_file.write_text(server.config_file.read_text() + "mail_fsync = never\n")
    server.start()
    url = create_postgres_database(args.postgres) if args.postgres else create_sqlite_database(workdir)
    try:
        text_block = asyncio.run(run(args, server, url))
    finally:
        server.cleanup()
        if args.postgres:
            drop_postgres_database(args.postgres, url)
    print(text_block)
    if args.write:
        write_results(text_block)
        print("written to bench/RESULTS.md")


if __name__ == "__main__":
    main()
