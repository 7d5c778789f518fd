#!/usr/bin/env python3
"""Scale: many connected inboxes on one machine, and how fast a reply stops a sequence (issue 29).

  processes  `imail serve --no-workers` (the API) and one or two `imail worker` processes, on a throwaway
             PostgreSQL database and a private `redis-server`
  servers    one Dovecot holding N generated users (passwd-files), one aiosmtpd sink (STARTTLS + AUTH) for
             every inbox, a loopback webhook receiver
  phases     1. connect N inboxes through the API and wait until the worker has read each of them once
             2. idle cost: nothing due for --idle-seconds; CPU of the worker processes and of the PostgreSQL
                backends serving this database (share of one core), the workers' RSS
             3. reply to stop: a two-step campaign over every inbox (--leads-per-inbox leads each, step 2 a
             day
                later); while it sends, --replies threaded replies are APPENDed at random moments into random
                senders' INBOXes; latency = APPEND → `reply.received` at the webhook receiver; then every
                answered lead must be `replied` (its sequence stopped) and every reply read exactly once
             4. with --workers 2: how the inboxes split between the workers (their leases), then one is
             SIGKILLed
                and the seconds until the survivor has read every inbox again; the replies placed around the
                kill are each read once

    .venv/bin/python bench/scale.py --inboxes 1000
    .venv/bin/python bench/scale.py --inboxes 1000 --no-server-idle      # Dovecot without IDLE: polling only
    .venv/bin/python bench/scale.py --inboxes 1000 --workers 2

`--env NAME=VALUE` passes a setting to the imail processes (e.g. IMAIL_INBOUND_MAX_CONNECTIONS=1000). The
figures are printed as Markdown rows for bench/RESULTS.md, with the machine's load average.
Environment: IMAIL_BENCH_ADMIN_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from soak import ALL_DAY, IMAIL, Process, start_process, start_redis, wait_healthy
from sqlalchemy.engine import make_url
from tests.fixtures.certs import make_self_signed
from tests.fixtures.databases import create_postgres_database, drop_postgres_database
from tests.fixtures.imap import DovecotServer, dovecot_available
from tests.fixtures.inbound import reply
from tests.fixtures.ports import free_port
from tests.fixtures.smtp import SmtpServer
from tests.fixtures.webhook_receiver import Receiver

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STEPS = [
    {
        "subject": "Quick question, {{first_name}}",
        "body": "<p>Hi {{first_name|there}}, a short question.</p>",
    },
    {"body": "<p>Following up on my note.</p>", "delay": {"amount": 1, "unit": "days"}},
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def room_for(imap: DovecotServer, inboxes: int) -> None:
    """Dovecot runs one `imap` process per connection and allows 100 by default (`default_process_limit`):
    with more inboxes than that IDLE-ing, it closes new connections. Room for every inbox, twice over."""
    limit = max(1000, 2 * inboxes + 50)
    with open(imap.config_file, "a") as config:
        config.write(
            f"default_process_limit = {limit}\ndefault_client_limit = {2 * limit}\n"
            # An IDLE-ing session looks for new mail this often when no change notification reached it (30 s
            # by default); providers push at once, and the reply latency measured here is imail's, not
            # Dovecot's.
            "mailbox_idle_check_interval = 1 secs\n"
        )  # both services, imap and imap-login (which stays as the TLS proxy of each STARTTLS session)


def without_idle(imap: DovecotServer) -> None:
    """Dovecot announcing every capability it has except IDLE (`imap_capability` replaces the list)."""
    imap.start()
    client = imaplib.IMAP4(imap.host, imap.port)
    imap.add_user("probe@scale.example", "probe")
    client.login("probe@scale.example", "probe")
    capabilities = [c for c in client.capabilities if c != "IDLE"]
    client.logout()
    imap.stop()
    with open(imap.config_file, "a") as config:
        config.write(f"protocol imap {{\n  imap_capability = {' '.join(capabilities)}\n}}\n")


class Backends:
    """CPU of the PostgreSQL backends serving one database (connections come and go: each is sampled while it
    lives and its last reading kept)."""

    def __init__(self, dsn: str, database: str):
        self.dsn, self.database = dsn, database
        self.seen: dict[int, tuple[float, float]] = {}  # pid -> (first reading, last reading)

    async def sample(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            pids = [
                r[0]
                for r in await conn.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database
                )
            ]
            own = await conn.fetchval("SELECT pg_backend_pid()")
        finally:
            await conn.close()
        for pid in pids:
            if pid == own:
                continue
            now = cpu_seconds(pid)
            first, _ = self.seen.get(pid, (now, now))
            self.seen[pid] = (first, now)

    def used(self) -> float:
        return sum(last - first for first, last in self.seen.values())


async def db(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def wait_all_read(dsn: str, count: int, timeout: float) -> float:
    """Seconds until every inbox has been read once."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    done = 0
    while time.monotonic() < deadline:
        done = (await db(dsn, "SELECT count(*) FROM mailbox_polls WHERE polled_at IS NOT NULL"))[0][0]
        if done >= count:
            return time.monotonic() - started
        await asyncio.sleep(1)
    raise SystemExit(f"scale: only {done} of {count} inboxes read within {timeout:.0f} s")


async def connect_inboxes(
    http: httpx.AsyncClient, imap: DovecotServer, sink: SmtpServer, count: int
) -> list[tuple[str, str]]:
    """(inbox id, address) of `count` new inboxes, created through the API like a user would."""
    gate = asyncio.Semaphore(4)  # a workspace's logins in progress at once (IMAIL_OUTBOUND_CONCURRENCY)

    async def one(n: int) -> tuple[str, str]:
        email = f"sender{n:05d}@scale.example"
        password = secrets.token_hex(8)
        sink.add_user(email, password)
        imap.add_user(email, password)
        async with gate:
            r = await http.post(
                "/v1/inboxes",
                json={
                    "email": email,
                    "name": f"Sender {n}",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": sink.port,
                    "smtp_security": "starttls",
                    "smtp_password": password,
                    "imap_host": "127.0.0.1",
                    "imap_port": imap.port,
                    "imap_security": "starttls",
                    "imap_password": password,
                    "sending_gap_minutes": 1,
                    "daily_limit": 50,
                },
            )
        if r.status_code != 201:
            raise SystemExit(f"scale: connecting inbox {n} failed: {r.status_code} {r.text[:300]}")
        return r.json()["id"], email

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def scale(args: argparse.Namespace, database_url: str, work: Path) -> int:
    cert = make_self_signed(work)
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    database = make_url(database_url).database
    redis_process, redis_url = start_redis(work)
    imap = DovecotServer(cert)
    sink = SmtpServer(security="starttls", cert=cert)
    receiver = await Receiver().start()
    processes: list[Process] = []
    report: list[str] = []
    try:
        room_for(imap, args.inboxes)
        if not args.server_idle:
            without_idle(imap)
        imap.start()
        sink.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")} | {
            "IMAIL_DATABASE_URL": database_url,
            "IMAIL_REDIS_URL": redis_url,
            "IMAIL_SECRET_KEY": secrets.token_urlsafe(48),
            "IMAIL_MAIL_CA_FILE": str(cert.ca_file),
            "IMAIL_WEBHOOKS_ALLOW_PRIVATE": "1",
            "IMAIL_MAIL_ALLOW_PRIVATE": "1",
            "IMAIL_LOG_LEVEL": "WARNING",
        }
        env |= dict(item.split("=", 1) for item in args.env)
        created = await asyncio.to_thread(
            subprocess.run,
            [str(IMAIL), "workspaces", "create", "Scale", "--tier", "apex", "--rate-limit-per-minute",
             "100000000", "--rate-limit-burst", "100000000", "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {json.loads(created.stdout)['live_key']}"}
        port = free_port()
        api_args = ["serve", "--no-workers", "--host", "127.0.0.1", "--port", str(port)]
        processes.append(start_process("api", api_args, env, work))
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, processes[0])
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as http:
            hook = await http.post("/v1/webhooks", json={"url": receiver.url(), "events": ["reply.received"]})
            if hook.status_code != 201:
                raise SystemExit(f"scale: webhook: {hook.text}")

            # 1. Connect the inboxes, then start the worker(s) and wait for every inbox's first read.
            started = time.monotonic()
            inboxes = await connect_inboxes(http, imap, sink, args.inboxes)
            print(
                f"[scale] {len(inboxes)} inboxes connected in {time.monotonic() - started:.0f} s", flush=True
            )
            workers = [start_process(f"worker{n}", ["worker"], env, work) for n in range(args.workers)]
            processes += workers
            first_read = await wait_all_read(dsn, len(inboxes), args.timeout)
            print(f"[scale] every inbox read once {first_read:.0f} s after the worker(s) started", flush=True)
            idle_rows = await db(dsn, "SELECT worker_id, idle, count(*) FROM mailbox_polls GROUP BY 1, 2")
            split = Counter()
            idling = 0
            for worker_id, idle, count in idle_rows:
                split[worker_id] += count
                idling += count if idle else 0
            report.append(
                f"connected: {len(inboxes)} inboxes, first read of all {first_read:.0f} s; IDLE-ing now: "
                f"{idling}; "
                f"inboxes per worker: {sorted(split.values(), reverse=True)}"
            )

            # 2. Idle cost.
            backends = Backends(dsn, database)
            await backends.sample()
            worker_cpu = [cpu_seconds(w.popen.pid) for w in workers]
            load_before = os.getloadavg()[0]
            started = time.monotonic()
            rss_peak = 0.0
            while (elapsed := time.monotonic() - started) < args.idle_seconds:
                await asyncio.sleep(min(5.0, args.idle_seconds - elapsed) or 0.1)
                await backends.sample()
                rss_peak = max(rss_peak, *(w.rss_mb() for w in workers))
            elapsed = time.monotonic() - started
            worker_share = [
                (cpu_seconds(w.popen.pid) - before) / elapsed
                for w, before in zip(workers, worker_cpu, strict=True)
            ]
            pg_share = backends.used() / elapsed
            report.append(
                f"idle {elapsed:.0f} s: worker CPU {', '.join(f'{s:.1%}' for s in worker_share)} of one core "
                f"(target < 5 %), PostgreSQL backends {pg_share:.1%} (target < 5 %), worker RSS peak "
                f"{rss_peak:.0f} MB (target < 400 MB); load average {load_before:.1f} → "
                f"{os.getloadavg()[0]:.1f}"
            )
            print("[scale] " + report[-1], flush=True)

            # 3. Reply to stop, while the campaign sends.
            # A campaign takes at most 100 inboxes: one per hundred.
            for first in range(0, len(inboxes), 100):
                share = inboxes[first : first + 100]
                campaign = await http.post(
                    "/v1/campaigns",
                    json={
                        "name": f"Scale {first // 100}",
                        "inbox_ids": [i for i, _ in share],
                        "steps": STEPS,
                        "send_window": ALL_DAY,
                        "daily_limit": 100_000,
                    },
                )
                if campaign.status_code != 201:
                    raise SystemExit(f"scale: campaign: {campaign.text}")
                campaign_id = campaign.json()["id"]
                leads = [
                    {
                        "email": f"lead{first * args.leads_per_inbox + n:06d}@prospect.example",
                        "first_name": f"Lee{n}",
                    }
                    for n in range(len(share) * args.leads_per_inbox)
                ]
                r = await http.post("/v1/leads/bulk", json={"campaign_id": campaign_id, "leads": leads})
                if r.status_code not in (200, 201):
                    raise SystemExit(f"scale: leads: {r.status_code} {r.text[:300]}")
                if (await http.post(f"/v1/campaigns/{campaign_id}/resume")).status_code != 200:
                    raise SystemExit("scale: resuming a campaign failed")
            placed = await place_replies(args, imap, sink, receiver, workers)
            report += placed.report
            # Every answered lead stopped; every reply read once.
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                got = Counter(json.loads(r.body)["data"]["from_email"] for r in receiver.requests)
                if all(got[email] >= 1 for email in placed.answered):
                    break
                await asyncio.sleep(1)
            got = Counter(json.loads(r.body)["data"]["from_email"] for r in receiver.requests)
            lost = [e for e in placed.answered if got[e] == 0]
            twice = [e for e in placed.answered if got[e] > 1]
            rows = await db(
                dsn, "SELECT email, status FROM leads WHERE email = ANY($1::text[])", list(placed.answered)
            )
            not_stopped = [email for email, status in rows if status != "replied"]
            report.append(
                f"replies: {len(placed.answered)} placed, {len(lost)} never reported, {len(twice)} reported "
                "twice, "
                f"{len(not_stopped)} answered leads not stopped"
            )
            print("[scale] " + report[-1], flush=True)
    finally:
        for process in processes:
            process.stop()
        await receiver.close()
        sink.stop()
        imap.cleanup()
        redis_process.kill()
        redis_process.wait(10)

    print(
        f"\n## Scale, {args.inboxes} inboxes, {args.workers} worker(s), server IDLE "
        f"{'on' if args.server_idle else 'off'}"
    )
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, settings "
        f"{args.env or 'default'}"
    )
    for line in report:
        print(f"- {line}")
    return 0


class Placed:
    def __init__(self) -> None:
        self.answered: set[str] = set()
        self.latencies: list[float] = []
        self.report: list[str] = []
        self.stalled_appends = 0


async def place_replies(
    args: argparse.Namespace,
    imap: DovecotServer,
    sink: SmtpServer,
    receiver: Receiver,
    workers: list[Process],
) -> Placed:
    """APPEND --replies threaded replies at random moments over --reply-seconds, each to an email the sink
    took, no lead twice; with two workers, SIGKILL the second halfway through. Latency: APPEND → webhook
    arrival."""
    rng = random.Random(29)
    placed = Placed()
    appended_at: dict[str, float] = {}  # lead address -> time.time() of the APPEND
    moments = sorted(rng.uniform(0, args.reply_seconds) for _ in range(args.replies))
    started = time.time()
    killed_at: float | None = None
    for moment in moments:
        await asyncio.sleep(max(0.0, started + moment - time.time()))
        if len(workers) > 1 and killed_at is None and moment > args.reply_seconds / 2:
            workers[-1].popen.kill()
            killed_at = time.time()
            print(f"[scale] SIGKILLed {workers[-1].name} at {killed_at - started:.0f} s", flush=True)
        with sink.lock:
            candidates = [m for m in sink.messages if m.envelope_to[0] not in appended_at]
        if not candidates:
            continue
        received = rng.choice(candidates)
        lead = received.envelope_to[0]
        answer = reply(
            received.message["Message-ID"],
            from_email=lead,
            to_email=received.envelope_from,
            subject="Re: " + str(received.message["Subject"]),
        )
        for attempt in range(3):
            try:
                await asyncio.to_thread(imap.append, received.envelope_from, answer)
                break
            except (TimeoutError, OSError) as exc:
                # The bench's own login waited over 10 s: Dovecot busy forking; counted, tried again.
                placed.stalled_appends += 1
                print(f"[scale] APPEND {attempt + 1} for {lead} failed: {exc!r}", flush=True)
        else:
            continue
        appended_at[lead] = time.time()
        placed.answered.add(lead)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        arrived = {json.loads(r.body)["data"]["from_email"]: r.at for r in reversed(receiver.requests)}
        if all(lead in arrived for lead in appended_at):
            break
        await asyncio.sleep(1)
    arrived = {json.loads(r.body)["data"]["from_email"]: r.at for r in reversed(receiver.requests)}
    placed.latencies = [arrived[lead] - at for lead, at in appended_at.items() if lead in arrived]
    if placed.latencies:
        placed.report.append(
            f"reply → reply.received: n={len(placed.latencies)}, p50 "
            f"{statistics.median(placed.latencies):.2f} s, "
            f"p99 {percentile(placed.latencies, 0.99):.2f} s, max {max(placed.latencies):.2f} s "
            f"(targets: p50 < 2 s, p99 < 10 s; polling only: p99 < 60 s); emails accepted by the sink "
            f"{len(sink.messages)}; load average {os.getloadavg()[0]:.1f}; the bench's own APPENDs that "
            f"timed out and were tried again: {placed.stalled_appends}"
        )
    if killed_at is not None:
        after = [
            arrived[lead] - at for lead, at in appended_at.items() if lead in arrived and at >= killed_at
        ]
        if after:
            placed.report.append(
                f"after the SIGKILL: {len(after)} replies, worst {max(after):.1f} s APPEND → webhook "
                "(the survivor takes the dead worker's inboxes over)"
            )
    for line in placed.report:
        print("[scale] " + line, flush=True)
    return placed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inboxes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, choices=(1, 2))
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument(
        "--reply-seconds", type=float, default=120.0, help="replies are spread over this long"
    )
    parser.add_argument("--leads-per-inbox", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=300.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds any phase may take")
    parser.add_argument(
        "--no-server-idle", dest="server_idle", action="store_false", help="Dovecot without IDLE"
    )
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the imail processes")
    args = parser.parse_args()
    if not dovecot_available():
        raise SystemExit("scale: needs Dovecot (see .ci/packages)")
    admin_url = os.environ.get(
        "IMAIL_BENCH_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    work = Path(tempfile.mkdtemp(prefix="imail-scale-"))
    work.chmod(0o755)  # Dovecot's unprivileged processes read the certificate kept here
    database_url = create_postgres_database(admin_url)
    try:
        return asyncio.run(scale(args, database_url, work))
    finally:
        drop_postgres_database(admin_url, database_url)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
