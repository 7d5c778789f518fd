#!/usr/bin/env python3
"""Soak: the production shape under steady mixed load for a long time (30 minutes by default), on loopback.

  processes  `imail serve --no-workers` (the API) and `imail worker` (every background worker), on a throwaway
             PostgreSQL database (created, migrated, dropped) and a private `redis-server` (or --redis-url)
  servers    two aiosmtpd SMTP sinks (STARTTLS + AUTH) and a private Dovecot (IMAP) holding both inboxes'
             mail, a loopback webhook receiver; all in this process except Dovecot
  load       a feeder adding a lead every --lead-interval s to an active two-step campaign (so both inboxes
             send step 1 at once and step 2 a minute later); --clients API loops of mixed reads and writes
             (lists, analytics JSON and CSV, suppressions added and removed, status, webhooks log); a replier
             that answers --reply-share of the emails the sinks accept by placing a threaded reply in the
             sender's Dovecot INBOX, which the inbound worker reads, matches and classifies; every event goes
             to the webhook receiver

RSS of each process is sampled every 10 s. The start figure is taken after a warm-up (a fifth of the run, at
most 2 minutes: connection pools, caches and the reply model fill up first), the end figure at the end of the
load. Errors: 5xx or unexpected 4xx answers and client-side failures, error lines and tracebacks in the
processes' logs, emails failed or left in doubt, webhook deliveries failed, replies placed but never read.
Exit status 1 when any error is counted or an RSS grew more than 10 % (`--max-growth`).

    make soak                                     # 30 minutes
    .venv/bin/python bench/soak.py --minutes 3    # a short check

Environment: IMAIL_BENCH_ADMIN_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy.engine import make_url
from tests.fixtures.certs import make_self_signed
from tests.fixtures.databases import create_postgres_database, drop_postgres_database
from tests.fixtures.imap import DovecotServer, dovecot_available
from tests.fixtures.inbound import reply
from tests.fixtures.ports import free_port
from tests.fixtures.smtp import SmtpServer
from tests.fixtures.webhook_receiver import Receiver

IMAIL = Path(sys.executable).with_name("imail")
ALL_DAY = {
    "timezone": "UTC",
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "00:00",
    "end": "24:00",
}
STEPS = [
    {
        "subject": "Quick question, {{first_name}}",
        "body": '<p>Hi {{first_name|there}}, see <a href="https://acme.io/x">this</a>.</p>',
    },
    {"body": "<p>Following up on my note.</p>", "delay": {"amount": 1, "unit": "minutes"}},
]
REPLIES = [
    "Sounds interesting, I would love to learn more. Can we talk next week?",
    "Not interested, thanks.",
    "Please remove me from your list.",
    "Let's book a meeting on Thursday.",
]
ERROR_MARKERS = ("Traceback", "[error", '"level": "error"', '"level": "critical"')


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, RSS MB)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"{self.name}: no VmRSS")

    def log_errors(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines() if any(marker in line for marker in ERROR_MARKERS)]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


@dataclass
class Tally:
    requests: Counter = field(default_factory=Counter)  # "GET /v1/campaigns 200" -> n
    errors: list[str] = field(default_factory=list)
    leads_added: int = 0
    replies_placed: int = 0

    def record(self, label: str, response: httpx.Response, ok: tuple[int, ...]) -> None:
        self.requests[f"{label} {response.status_code}"] += 1
        if response.status_code not in ok:
            self.errors.append(f"{label}: {response.status_code} {response.text[:200]}")


def start_process(name: str, args: list[str], env: dict[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            [str(IMAIL), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=logs,
        )
    return Process(name, popen, log)


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    popen = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    return popen, f"redis://127.0.0.1:{port}/0"


async def wait_healthy(base_url: str, process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise SystemExit(f"soak: {process.name} exited:\n{process.log.read_text()[-2000:]}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"soak: {process.name} not healthy after {timeout} s")


async def api_loop(
    http: httpx.AsyncClient,
    campaign_id: str,
    webhook_id: str,
    tally: Tally,
    stop: asyncio.Event,
    rng: random.Random,
) -> None:
    while not stop.is_set():
        choice = rng.randrange(10)
        try:
            if choice == 0:
                r = await http.get("/v1/campaigns", params={"limit": 10})
                tally.record("GET /v1/campaigns", r, (200,))
            elif choice == 1:
                r = await http.get("/v1/leads", params={"campaign_id": campaign_id, "limit": 25})
                tally.record("GET /v1/leads", r, (200,))
            elif choice == 2:
                r = await http.get(f"/v1/analytics/campaigns/{campaign_id}")
                tally.record("GET analytics campaign", r, (200,))
            elif choice == 3:
                r = await http.get("/v1/analytics/workspace", params={"format": "csv"})
                tally.record("GET analytics csv", r, (200,))
            elif choice == 4:
                r = await http.get("/v1/analytics/funnel")
                tally.record("GET analytics funnel", r, (200,))
            elif choice == 5:
                r = await http.post(
                    "/v1/suppressions", json={"email": f"s-{secrets.token_hex(5)}@blocked.example"}
                )
                tally.record("POST /v1/suppressions", r, (201,))
                if r.status_code == 201:
                    d = await http.delete(f"/v1/suppressions/{r.json()['id']}")
                    tally.record("DELETE /v1/suppressions", d, (200,))
            elif choice == 6:
                r = await http.get("/v1/status/full")
                tally.record("GET /v1/status/full", r, (200,))
            elif choice == 7:
                r = await http.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 10})
                tally.record("GET webhook deliveries", r, (200,))
            elif choice == 8:
                r = await http.get("/v1/replies", params={"limit": 10})
                tally.record("GET /v1/replies", r, (200,))
            else:
                r = await http.get(f"/v1/campaigns/{campaign_id}/messages", params={"limit": 25})
                tally.record("GET campaign messages", r, (200,))
        except httpx.HTTPError as exc:
            tally.errors.append(f"client: {type(exc).__name__}: {exc}")
        await asyncio.sleep(0.1)


async def feeder(
    http: httpx.AsyncClient, campaign_id: str, interval: float, tally: Tally, stop: asyncio.Event
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        email = f"lead{n:06d}-{secrets.token_hex(3)}@prospect.example"
        try:
            r = await http.post(
                "/v1/leads", json={"campaign_id": campaign_id, "email": email, "first_name": f"Lee{n}"}
            )
            tally.record("POST /v1/leads", r, (201,))
            tally.leads_added += r.status_code == 201
        except httpx.HTTPError as exc:
            tally.errors.append(f"client: {type(exc).__name__}: {exc}")
        await asyncio.sleep(interval)


def replier(
    sinks: list[SmtpServer], imap: DovecotServer, share: float, tally: Tally, stop: threading.Event
) -> None:
    """Answers a share of the step-1 emails the sinks accept, as the lead would: a threaded reply in the
    inbox."""
    rng = random.Random(7)
    seen = [0] * len(sinks)
    while not stop.is_set():
        for i, sink in enumerate(sinks):
            with sink.lock:
                fresh = sink.messages[seen[i] :]
                seen[i] = len(sink.messages)
            for received in fresh:
                message = received.message
                if message["In-Reply-To"] or rng.random() >= share:
                    continue
                answer = reply(
                    message["Message-ID"],
                    from_email=received.envelope_to[0],
                    to_email=received.envelope_from,
                    subject="Re: " + str(message["Subject"]),
                    text=rng.choice(REPLIES),
                )
                imap.append(received.envelope_from, answer)
                tally.replies_placed += 1
        stop.wait(0.5)


async def db_figures(dsn: str) -> dict[str, object]:
    conn = await asyncpg.connect(dsn)
    try:
        messages = dict(await conn.fetch("SELECT status, count(*) FROM messages GROUP BY status"))
        deliveries = dict(await conn.fetch("SELECT status, count(*) FROM webhook_deliveries GROUP BY status"))
        replies = await conn.fetchval("SELECT count(*) FROM replies")
        events = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    return {"messages": messages, "deliveries": deliveries, "replies": replies, "events": events}


async def soak(args: argparse.Namespace, database_url: str, work: Path) -> int:
    cert = make_self_signed(work)
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    redis_process, redis_url = (None, args.redis_url) if args.redis_url else start_redis(work)
    imap = DovecotServer(cert)
    sinks = [SmtpServer(security="starttls", cert=cert) for _ in range(2)]
    receiver = await Receiver().start()
    processes: list[Process] = []
    replier_stop = threading.Event()
    try:
        imap.start()
        for sink in sinks:
            sink.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")} | {
            "IMAIL_DATABASE_URL": database_url,
            "IMAIL_REDIS_URL": redis_url,
            "IMAIL_SECRET_KEY": secrets.token_urlsafe(48),
            "IMAIL_MAIL_CA_FILE": str(cert.ca_file),
            "IMAIL_WEBHOOKS_ALLOW_PRIVATE": "1",
            "IMAIL_INBOUND_POLL_INTERVAL": "5",
            "IMAIL_LOG_LEVEL": "WARNING",
        }
        created = subprocess.run(
            [
                str(IMAIL),
                "workspaces",
                "create",
                "Soak",
                "--tier",
                "apex",
                "--rate-limit-per-minute",
                "100000000",
                "--rate-limit-burst",
                "100000000",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        headers = {"Authorization": f"Bearer {json.loads(created.stdout)['live_key']}"}
        port = free_port()
        processes.append(
            start_process(
                "api", ["serve", "--no-workers", "--host", "127.0.0.1", "--port", str(port)], env, work
            )
        )
        processes.append(start_process("worker", ["worker"], env, work))
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, processes[0])

        tally = Tally()
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
            inbox_ids = []
            for n, sink in enumerate(sinks):
                email = f"sender{n}@soak.example"
                password = secrets.token_hex(8)
                sink.add_user(email, password)
                imap.add_user(email, password)
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
                        "sending_gap_minutes": 0,
                        "daily_limit": 5000,
                    },
                )
                if r.status_code != 201:
                    raise SystemExit(f"soak: connecting an inbox failed: {r.text}")
                inbox_ids.append(r.json()["id"])
            hook = await http.post("/v1/webhooks", json={"url": receiver.url(), "events": ["*"]})
            campaign = await http.post(
                "/v1/campaigns",
                json={
                    "name": "Soak",
                    "inbox_ids": inbox_ids,
                    "steps": STEPS,
                    "send_window": ALL_DAY,
                    "daily_limit": 10_000,
                },
            )
            if hook.status_code != 201 or campaign.status_code != 201:
                raise SystemExit(f"soak: set-up failed: {hook.text} {campaign.text}")
            campaign_id = campaign.json()["id"]
            if (await http.post(f"/v1/campaigns/{campaign_id}/resume")).status_code != 200:
                raise SystemExit("soak: resuming the campaign failed")

            duration = args.minutes * 60
            warmup = min(120.0, duration / 5)
            stop = asyncio.Event()
            rng = random.Random(1)
            started = time.monotonic()
            replier_thread = threading.Thread(
                target=replier, args=(sinks, imap, args.reply_share, tally, replier_stop), daemon=True
            )
            replier_thread.start()
            tasks = [asyncio.create_task(feeder(http, campaign_id, args.lead_interval, tally, stop))]
            tasks += [
                asyncio.create_task(api_loop(http, campaign_id, hook.json()["id"], tally, stop, rng))
                for _ in range(args.clients)
            ]
            baseline: dict[str, float] = {}
            while (elapsed := time.monotonic() - started) < duration:
                for process in processes:
                    if process.popen.poll() is not None:
                        raise SystemExit(f"soak: {process.name} died:\n{process.log.read_text()[-3000:]}")
                    process.samples.append((elapsed, process.rss_mb()))
                if not baseline and elapsed >= warmup:
                    baseline = {p.name: p.samples[-1][1] for p in processes}
                    print(
                        f"[{elapsed:6.0f} s] warm-up over; RSS "
                        + ", ".join(f"{k} {v:.1f} MB" for k, v in baseline.items()),
                        flush=True,
                    )
                elif len(processes[0].samples) % 6 == 0:
                    print(
                        f"[{elapsed:6.0f} s] {sum(tally.requests.values())} requests, {tally.leads_added} "
                        "leads, "
                        f"{sum(len(s.messages) for s in sinks)} emails, {tally.replies_placed} replies "
                        "placed, "
                        f"{len(receiver.requests)} webhooks; RSS "
                        + ", ".join(f"{p.name} {p.samples[-1][1]:.1f} MB" for p in processes),
                        flush=True,
                    )
                await asyncio.sleep(10)
            end_rss = {p.name: p.rss_mb() for p in processes}
            stop.set()
            await asyncio.gather(*tasks)
            load_seconds = time.monotonic() - started

            # Let the workers finish what the load left: due step-2s, replies placed, webhook deliveries.
            replier_stop.set()
            replier_thread.join(10)
            drain_deadline = time.monotonic() + args.drain
            drained = False
            while time.monotonic() < drain_deadline:
                figures = await db_figures(dsn)
                busy = sum(v for k, v in figures["messages"].items() if k in ("sending", "handed", "retry"))
                pending = figures["deliveries"].get("pending", 0)
                if busy == 0 and pending == 0 and figures["replies"] >= tally.replies_placed:
                    drained = True
                    break
                await asyncio.sleep(2)
            # Step 2s keep falling due while this waits: stop the processes (SIGTERM: in-flight sends finish
            # and are recorded) before the final count, or an email sent after it would look unrecorded.
            for process in processes:
                process.stop()
            figures = await db_figures(dsn)
    finally:
        replier_stop.set()
        for process in processes:
            process.stop()
        await receiver.close()
        for sink in sinks:
            sink.stop()
        imap.cleanup()
        if redis_process is not None:
            redis_process.kill()
            redis_process.wait(10)

    errors = []
    for process in processes:
        errors += [f"{process.name} log: {line[:200]}" for line in process.log_errors()]
    errors += tally.errors
    messages = figures["messages"]
    errors += [f"{n} emails {status}" for status, n in messages.items() if status in ("failed", "unknown")]
    # Pending is an error only when the drain gave up on it: the last sends' events, recorded while the worker
    # stopped, stay queued for its next start (that is the queue working, not a loss).
    errors += [
        f"{n} webhook deliveries {status}"
        for status, n in figures["deliveries"].items()
        if status != "succeeded" and (status != "pending" or not drained)
    ]
    if figures["replies"] < tally.replies_placed:
        errors.append(f"{tally.replies_placed - figures['replies']} replies placed but never read")
    received = sum(len(s.messages) for s in sinks)
    # The same step to the same lead twice would be the one unforgivable error; each attempt composes its own
    # Message-ID, so compare recipient and subject (every step's subject differs in this campaign).
    sends = Counter((tuple(r.envelope_to), r.message["Subject"]) for s in sinks for r in s.messages)
    if twice := sum(n - 1 for n in sends.values() if n > 1):
        errors.append(f"{twice} emails reached a recipient a second time (same subject)")
    if received != messages.get("sent", 0):
        errors.append(f"sinks received {received} emails, {messages.get('sent', 0)} recorded as sent")

    print(
        f"\nsoak: {args.minutes:g} min of load ({load_seconds:.0f} s), then drained; "
        f"{sum(tally.requests.values())} API "
        f"requests, {tally.leads_added} leads added, {received} emails accepted by the sinks, "
        f"{tally.replies_placed} replies placed / {figures['replies']} read, {figures['events']} events, "
        f"{len(receiver.requests)} webhook deliveries received"
    )
    print("requests: " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.requests.items())))
    print(f"emails by status: {dict(messages)}; webhook deliveries by status: {dict(figures['deliveries'])}")
    growth_failed = False
    print(
        f"\n| process | RSS after warm-up ({min(120.0, args.minutes * 12):.0f} s) | RSS at end | growth | "
        "limit |"
    )
    print("|---|---:|---:|---:|---:|")
    for process in processes:
        start_mb, end_mb = baseline.get(process.name, 0.0), end_rss[process.name]
        growth = (end_mb - start_mb) / start_mb if start_mb else 0.0
        over = growth > args.max_growth
        growth_failed |= over
        print(
            f"| {process.name} | {start_mb:.1f} MB | {end_mb:.1f} MB | {growth:+.1%} | "
            f"{args.max_growth:.0%}{' EXCEEDED' if over else ''} |"
        )
    print(f"\nerrors: {len(errors)}")
    for line in errors[:30]:
        print("  " + line)
    if errors or growth_failed:
        kept = Path(tempfile.mkdtemp(prefix="imail-soak-logs-"))
        for process in processes:
            shutil.copy(process.log, kept / process.log.name)
        print(f"process logs kept in {kept}")
    return 1 if errors or growth_failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="minutes of load (default 30)")
    parser.add_argument("--clients", type=int, default=3, help="concurrent API loops")
    parser.add_argument("--lead-interval", type=float, default=0.5, help="seconds between two new leads")
    parser.add_argument("--reply-share", type=float, default=0.2, help="share of step-1 emails answered")
    parser.add_argument(
        "--drain", type=float, default=120.0, help="seconds to let the workers finish afterwards"
    )
    parser.add_argument(
        "--max-growth", type=float, default=0.10, help="largest RSS growth allowed (0.10 = 10 %%)"
    )
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    args = parser.parse_args()
    if not dovecot_available():
        raise SystemExit("soak: needs Dovecot (see .ci/packages)")
    admin_url = os.environ.get(
        "IMAIL_BENCH_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    work = Path(tempfile.mkdtemp(prefix="imail-soak-"))
    work.chmod(0o755)  # Dovecot's unprivileged processes read the certificate kept here
    database_url = create_postgres_database(admin_url)
    try:
        return asyncio.run(soak(args, database_url, work))
    finally:
        drop_postgres_database(admin_url, database_url)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
