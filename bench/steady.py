#!/usr/bin/env python3
"""Steady sending (issue 29, item 3): many inboxes, each held to its daily limit and sending gap, on a clock
running `--speed` times faster than real time, so that a sending day passes in minutes: how late each email
leaves.

  clock     the worker's injected clock (`WorkerContext.clock`): compressed now = t0 + (monotonic − m0) ×
            speed, t0 at `--start-hour` of today (UTC): from 14:00, 10 minutes reach every inbox's daily
            limit before midnight (50 sends 10 to 12.5 minutes apart), then send on into the next day; the
            product's rules decide everything: the daily limit per inbox and UTC day, the gap
            (`sending_gap_minutes`) and its jitter, the send window (always open here), warmup (none of these
            inboxes is warming)
  servers   a throwaway PostgreSQL database (created, migrated, dropped) and an aiosmtpd sink in its own
            process on loopback (AUTH accepted, each inbox its own login), noting when each message arrives
  set-up    `--inboxes` connected inboxes (daily limit `--daily-limit`, gap `--gap-minutes`, Sent filed by the
            provider) in campaigns of `--inboxes-per-campaign`, one step each, `--leads-per-inbox` leads per
            inbox, added through the API in-process: every lead is due from the start
  measured  the `imail worker` sending loops (the registry's spec, run by its Supervisor) in this process for
            `--minutes` real minutes; then, per email, its due time by the rules: the first email of an inbox
            at t0; each next one when the gap drawn at the previous send ends (`Rotation.sent` is wrapped to
            note the gap it was given), or at the next UTC midnight when that day's limit is used up; its
            lateness = when the sink got it − its due time, in real seconds. An inbox whose next email is
            due before the end and has not gone counts with its lateness so far (a lower bound).
            Violations: more sends planned on one day than the limit; two sends planned closer than the gap.
            CPU: this process (the worker; the sink has its own), the PostgreSQL backends of this database,
            per email sent; the machine's load average at the start and the end.

    .venv/bin/python bench/steady.py                         # 1,000 inboxes, 10 minutes (~17 h compressed)
    .venv/bin/python bench/steady.py --inboxes 200 --minutes 3

Environment: IMAIL_BENCH_ADMIN_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from scale import Backends, db, percentile  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from tests.fixtures.databases import create_postgres_database, drop_postgres_database  # noqa: E402

from imail.config import Settings  # noqa: E402
from imail.db import Database  # noqa: E402
from imail.kit import crypto  # noqa: E402
from imail.main import create_app  # noqa: E402
from imail.models import Inbox  # noqa: E402
from imail.sending.rotation import Rotation  # noqa: E402
from imail.sending.service import Planner  # noqa: E402
from imail.wiring import install_subscribers  # noqa: E402
from imail.workers import sending as worker  # noqa: E402
from imail.workers.context import WorkerContext  # noqa: E402
from imail.workers.registry import WORKERS  # noqa: E402
from imail.workers.runner import Supervisor  # noqa: E402
from imail.workspaces.service import create_workspace  # noqa: E402
from sending import ALL_DAY, SECRET, STEP, free_port, serve_sink  # noqa: E402

TARGET_P99 = 5.0
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.MULTILINE | re.IGNORECASE)


# --------------------------------------------------------------------------------------------- the sink


def _sink_main(port: int, log_path: str, ready) -> None:  # runs in its own process
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - one line per message, for the life of the process

    def note(envelope) -> None:
        found = MESSAGE_ID.search(envelope.content)
        header = found.group(1).decode() if found else "-"
        log.write(f"{time.monotonic():.6f}\t{envelope.mail_from}\t{header}\n")

    serve_sink(port, ready, note, backlog=1024)


class Sink:
    def __init__(self, directory: Path) -> None:
        context = multiprocessing.get_context("fork")  # before any event loop or connection exists here
        self.port = free_port()
        self.log = directory / "sink.log"
        ready = context.Event()
        self.process = context.Process(target=_sink_main, args=(self.port, str(self.log), ready), daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise SystemExit("bench: the SMTP sink did not start")

    def received(self) -> list[tuple[float, str, str]]:
        rows = []
        for line in self.log.read_text().splitlines():
            moment, sender, header = line.split("\t")
            rows.append((float(moment), sender, header))
        return rows

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


# --------------------------------------------------------------------------------------------- set-up


async def setup(settings, database, sink: Sink, args: argparse.Namespace) -> dict[str, str]:
    """The inboxes and campaigns; returns inbox id → email."""
    import httpx

    async with database.transaction() as session:
        created = await create_workspace(session, "Steady", "apex", 100_000_000, 100_000_000)
    box = crypto.secret_box(settings)
    secret = box.encrypt("bench-password")
    async with database.transaction() as session:
        rows = [
            Inbox(
                workspace_id=created.workspace.id,
                livemode=True,
                email=f"sender{n:04d}@steady-{n % 50:02d}.test",
                name=f"Sender {n}",
                signature="Sender\nAcme",
                status="connected",
                daily_limit=args.daily_limit,
                sending_gap_minutes=args.gap_minutes,
                sent_folder_mode="provider",  # as Gmail: the provider files what it sends; no IMAP needed
                smtp_host="127.0.0.1",
                smtp_port=sink.port,
                smtp_security="none",
                smtp_username=f"sender{n:04d}",
                smtp_password_encrypted=secret,
                imap_host="127.0.0.1",
                imap_port=1,
                imap_security="none",
                imap_username=f"sender{n:04d}",
                imap_password_encrypted=secret,
            )
            for n in range(args.inboxes)
        ]
        session.add_all(rows)
        await session.flush()
        inboxes = {row.id: row.email for row in rows}

    ids = list(inboxes)
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {created.live_key}"}
    lead = 0
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600
        ) as api,
    ):
        for first in range(0, len(ids), args.inboxes_per_campaign):
            members = ids[first : first + args.inboxes_per_campaign]
            campaign = await api.post(
                "/v1/campaigns",
                headers=headers,
                json={
                    "name": f"Steady {first // args.inboxes_per_campaign}",
                    "inbox_ids": members,
                    "steps": [STEP],
                    "send_window": ALL_DAY,
                    "daily_limit": 100_000,  # the inboxes' limits are the ones under test
                },
            )
            if campaign.status_code != 201:
                raise SystemExit(f"bench: creating a campaign failed: {campaign.text[:500]}")
            campaign_id = campaign.json()["id"]
            wanted = len(members) * args.leads_per_inbox
            for start in range(0, wanted, 5000):
                batch = [
                    {
                        "email": f"lead{n:07d}@example.org",
                        "first_name": f"Lead{n}",
                        "company": f"Co {n % 997}",
                    }
                    for n in range(lead + start, lead + min(wanted, start + 5000))
                ]
                bulk = await api.post(
                    "/v1/leads/bulk", headers=headers, json={"campaign_id": campaign_id, "leads": batch}
                )
                if bulk.status_code != 200 or bulk.json()["created"] != len(batch):
                    raise SystemExit(f"bench: adding leads failed: {bulk.text[:500]}")
            lead += wanted
            resumed = await api.post(f"/v1/campaigns/{campaign_id}/resume", headers=headers)
            if resumed.status_code != 200:
                raise SystemExit(f"bench: resuming failed: {resumed.text[:500]}")
    return inboxes


# --------------------------------------------------------------------------------------------- the run


class Plans:
    """Every send a claim plans, with the end of the gap it drew (`Rotation.sent(inbox, gap_until)`), keyed
    (inbox id, the claim's now): matched afterwards with the attempts that were committed."""

    def __init__(self) -> None:
        self.gap_until: dict[tuple[str, datetime], datetime] = {}
        self.claims = self.examined = 0

    def install(self):

        original_sent, original_claim = Rotation.sent, Planner.claim
        plans = self.gap_until

        def sent(rotation, inbox, gap_until):
            plans[(inbox.id, rotation.now)] = gap_until
            return original_sent(rotation, inbox, gap_until)

        async def claim(planner, limit):
            result = await original_claim(planner, limit)
            self.claims += 1
            self.examined += result.examined
            return result

        Rotation.sent = sent  # type: ignore[method-assign]
        Planner.claim = claim  # type: ignore[method-assign]

        def undo() -> None:
            Rotation.sent = original_sent  # type: ignore[method-assign]
            Planner.claim = original_claim  # type: ignore[method-assign]

        return undo


async def run(args: argparse.Namespace, database_url: str, sink: Sink) -> int:
    import httpx

    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        redis_url=None,
        public_url="https://t.bench.test",
        mail_allow_private=True,  # the sink is on loopback
        log_level="WARNING",
    )
    database = Database(settings)
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    backends = Backends(dsn, make_url(database_url).database)
    try:
        started_setup = time.monotonic()
        inboxes = await setup(settings, database, sink, args)
        print(
            f"set-up: {len(inboxes)} inboxes, {len(inboxes) * args.leads_per_inbox} leads in "
            f"{time.monotonic() - started_setup:.0f} s",
            flush=True,
        )
        speed = args.speed
        t0 = datetime.combine(datetime.now(UTC).date(), day_time(args.start_hour), tzinfo=UTC)
        # The leads are due when they were enrolled, by the real clock: after t0 when the bench runs later in
        # the day than --start-hour, and they would only come due minutes into the compressed day. Moved back
        # in their order, so that every lead is due at t0 whatever the time of day.
        await db(
            dsn,
            "UPDATE sequence_states SET due_at = due_at - shift, scheduled_at = scheduled_at - shift "
            "FROM (SELECT greatest(max(due_at) - $1, interval '0') AS shift FROM sequence_states) AS latest "
            "WHERE due_at IS NOT NULL",
            t0,
        )
        await db(dsn, "VACUUM ANALYZE")
        m0 = time.monotonic()

        def clock() -> datetime:
            return t0 + timedelta(seconds=(time.monotonic() - m0) * speed)

        def real(moment: datetime) -> float:
            return m0 + (moment - t0).total_seconds() / speed

        plans = Plans()
        undo = plans.install()
        specs = tuple(spec for spec in WORKERS if spec.name == "sending")
        load_start = os.getloadavg()
        async with httpx.AsyncClient(timeout=10.0) as http:
            ctx = WorkerContext(settings, database, None, http, f"steady:{os.getpid()}", clock=clock)
            supervisor = Supervisor(ctx, specs)
            await backends.sample()
            cpu_start = time.process_time()
            m0 = time.monotonic()
            supervisor.start()
            end = m0 + args.minutes * 60
            while time.monotonic() < end:
                await asyncio.sleep(min(2.0, max(0.0, end - time.monotonic())))
                await backends.sample()
                if args.progress:
                    print(
                        f"  {time.monotonic() - m0:5.0f} s  compressed {clock():%H:%M}  "
                        f"load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
            ended = time.monotonic()
            await supervisor.stop()
            worker_cpu = time.process_time() - cpu_start
            await backends.sample()

            await worker.smtp_pool(ctx).close()
        undo()
        load_end = os.getloadavg()
        await asyncio.sleep(1.0)  # the sink writes its last lines

        messages = await db(
            dsn,
            "SELECT inbox_id, created_at, status, message_id_header FROM messages "
            "ORDER BY inbox_id, created_at",
        )
        failures = await db(
            dsn,
            "SELECT left(coalesce(smtp_response, ''), 80) AS response, count(*) AS n FROM messages "
            "WHERE status <> 'sent' GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
        )
        received = {header: moment for moment, _, header in sink.received()}
        statuses = Counter(m["status"] for m in messages)
        by_inbox: dict[str, list] = defaultdict(list)
        for m in messages:
            by_inbox[m["inbox_id"]].append(m)

        gap = timedelta(minutes=args.gap_minutes)
        lateness: list[float] = []
        timeline: list[tuple[float, float]] = []  # (seconds into the run, lateness) per email
        first_sends: list[float] = []  # each inbox's first email: every inbox due at once, at the start
        owed: list[float] = []
        unmatched = over_limit = too_close = unplanned = 0
        sink_intervals: list[float] = []
        days_seen: set = set()
        for inbox_id in inboxes:
            sends = by_inbox.get(inbox_id, [])
            per_day: Counter = Counter()
            due = t0
            previous_at = None
            previous_received = None
            for m in sends:
                created = m["created_at"]
                per_day[created.date()] += 1
                days_seen.add(created.date())
                if previous_at is not None and created - previous_at < gap:
                    too_close += 1
                arrived = received.get(m["message_id_header"])
                if arrived is None:
                    unmatched += 1
                else:
                    lateness.append(arrived - real(due))
                    timeline.append((arrived - m0, arrived - real(due)))
                    if previous_at is None:
                        first_sends.append(arrived - real(due))
                    if previous_received is not None:
                        sink_intervals.append(arrived - previous_received)
                    previous_received = arrived
                gap_until = plans.gap_until.get((inbox_id, created))
                if gap_until is None:  # a retried attempt keeps its first creation time: the gap, no jitter
                    unplanned += 1
                    gap_until = created + gap
                due = gap_until
                if per_day[due.date()] >= args.daily_limit:
                    due = datetime.combine(due.date() + timedelta(days=1), day_time(0), tzinfo=UTC)
                previous_at = created
            over_limit += sum(1 for count in per_day.values() if count > args.daily_limit)
            if real(due) < ended - TARGET_P99:
                owed.append(ended - real(due))
        everything = sorted(lateness + owed)
        sent = statuses.get("sent", 0)
        postgres_cpu = backends.used()
        compressed_hours = (ended - m0) * speed / 3600

        def ms(seconds: float) -> str:
            return f"{seconds * 1000:.2f} ms"

        p99 = percentile(everything, 0.99) if everything else float("nan")
        lines = [
            f"- run: {len(inboxes)} inboxes (limit {args.daily_limit}/day, "
            f"gap {args.gap_minutes} min + jitter), "
            f"{len(inboxes) // args.inboxes_per_campaign} campaigns of {args.inboxes_per_campaign}, "
            f"{args.leads_per_inbox} leads per inbox; clock ×{speed:g} from {t0:%H:%M} UTC for "
            f"{(ended - m0) / 60:.1f} real minutes ({compressed_hours:.1f} compressed hours, days "
            f"{', '.join(f'{d:%m-%d}' for d in sorted(days_seen))})",
            f"- emails: {sent} sent ({sent / (ended - m0):.1f}/s), attempts by status "
            f"{dict(sorted(statuses.items()))}; not found at the sink {unmatched}, "
            f"plans not noted {unplanned}" + "".join(f"; {f['n']} × {f['response']!r}" for f in failures),
            "- lateness (sink arrival − due by the rules), real seconds: "
            f"p50 {percentile(everything, 0.5):.2f}, "
            f"p99 {p99:.2f}, max {everything[-1] if everything else float('nan'):.2f} over {len(everything)} "
            f"emails, {len(owed)} of them due and not sent at the end (counted with their lateness so far); "
            f"target p99 < {TARGET_P99:g} s: {'met' if p99 < TARGET_P99 else 'MISSED'}",
            f"- of which each inbox's first email (all due at the start): p50 "
            f"{percentile(first_sends, 0.5) if first_sends else float('nan'):.2f}, max "
            f"{max(first_sends, default=float('nan')):.2f} s; {len(first_sends)} inboxes sent by the end",
            f"- claims: {plans.claims}, sequence states read {plans.examined} "
            f"({plans.examined / max(sent, 1):.1f} per email sent)",
            f"- violations: inbox-days over the limit {over_limit}, sends planned closer than the gap "
            f"{too_close}; at the sink the shortest interval between one inbox's emails "
            f"{min(sink_intervals) if sink_intervals else float('nan'):.2f} s "
            f"(gap {gap.total_seconds() / speed:.2f} s real), p1 "
            f"{percentile(sorted(sink_intervals), 0.01) if sink_intervals else float('nan'):.2f} s",
            f"- CPU per email: worker process {ms(worker_cpu / max(sent, 1))}, PostgreSQL backends "
            f"{ms(postgres_cpu / max(sent, 1))} (worker {worker_cpu / (ended - m0) * 100:.0f} % of one core, "
            f"PostgreSQL {postgres_cpu / (ended - m0) * 100:.0f} %)",
            f"- load average (1, 5, 15 min): start {', '.join(f'{v:.2f}' for v in load_start)}; end "
            f"{', '.join(f'{v:.2f}' for v in load_end)} ({os.cpu_count()} cores)",
        ]
        if args.timeline:
            # p50 and p99 lateness of the emails that arrived in each 30-second stretch of the run
            buckets: dict[int, list[float]] = defaultdict(list)
            for moment, late in timeline:
                buckets[int(moment // 30)].append(late)
            lines.append(
                "- lateness by 30 s of the run (p50/p99): "
                + ", ".join(
                    f"{b * 30}s {percentile(v, 0.5):.1f}/{percentile(v, 0.99):.1f}"
                    for b, v in sorted(buckets.items())
                )
            )
        print("\n".join(lines), flush=True)
        return 0 if p99 < TARGET_P99 and not over_limit and not too_close else 1
    finally:
        await database.dispose()


def main() -> int:

    install_subscribers()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inboxes", type=int, default=1000)
    parser.add_argument("--inboxes-per-campaign", type=int, default=10)
    parser.add_argument("--leads-per-inbox", type=int, default=100)
    parser.add_argument("--daily-limit", type=int, default=50)
    parser.add_argument("--gap-minutes", type=int, default=10)
    parser.add_argument("--speed", type=float, default=100.0, help="compressed seconds per real second")
    parser.add_argument("--minutes", type=float, default=10.0, help="real minutes of sending")
    parser.add_argument("--start-hour", type=int, default=14, help="compressed start, hour of today (UTC)")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--timeline", action="store_true", help="also lateness per 30 s of the run")
    args = parser.parse_args()
    admin = os.environ.get("IMAIL_BENCH_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory(prefix="imail-steady-") as directory:
        sink = Sink(Path(directory))  # forked before any event loop exists here
        database_url = create_postgres_database(admin)
        try:
            return asyncio.run(run(args, database_url, sink))
        finally:
            sink.stop()
            drop_postgres_database(admin, database_url)


if __name__ == "__main__":
    raise SystemExit(main())
