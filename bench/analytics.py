#!/usr/bin/env python3
"""Analytics benchmark: the funnel and a 90-day campaign breakdown read from the rollups, against a
`COUNT … GROUP BY` over the raw event table for the same answer, in the same run, on PostgreSQL.

Seeds one workspace with 1,000,000 events over 90 days (20 campaigns × 3 steps × 2 variants × 10 inboxes; each
email sent, mostly delivered, some bounced, opened, clicked — some by machines —, replied and classified),
loaded with COPY; the rollups are computed from those very events by `imail.analytics.rollups.Fold` (the code
`imail analytics rebuild` runs) and loaded the same way. Then, alternating, best of N rounds each:

  funnel     rollups: `imail.analytics.reports.funnel_report` (90 days: totals + per day)
             raw:     COUNT(*) / COUNT(DISTINCT) / last label per reply (window) over `events`
  campaign   rollups: `imail.analytics.reports.campaign_report` for one campaign (totals, per day, per step
             and variant)
             raw:     COUNT(*) … GROUP BY day, step, variant, type over `events` for that campaign

Both answers are compared before timing (the benchmark fails if they differ).

    .venv/bin/python bench/analytics.py              # 1,000,000 events, 5 rounds
    .venv/bin/python bench/analytics.py --events 200000 --record   # also write RESULTS.md's "## Analytics"

Environment: IMAIL_BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from imail.analytics import reports
from imail.analytics.rollups import Fold
from imail.config import Settings
from imail.db import Database
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant
from imail.migrations import upgrade

DAYS = 90
END = date(2026, 11, 22)
START = END - timedelta(days=DAYS - 1)
LABELS = ["interested", "not_interested", "meeting_booked", "neutral"]


def generate(target: int, campaigns: list[str], inboxes: list[str], rng: random.Random):
    """(created_at, type, data) in time order, about `target` of them."""
    events = []
    t0 = datetime(START.year, START.month, START.day, tzinfo=UTC)
    while len(events) < target:
        at = t0 + timedelta(seconds=rng.randrange(DAYS * 86400 - 86400))
        ref = {
            "message_id": new_id("msg"),
            "campaign_id": rng.choice(campaigns),
            "lead_id": None,
            "inbox_id": rng.choice(inboxes),
            "email": None,
            "step": rng.randint(1, 3),
            "variant": rng.choice("ab"),
        }
        later = lambda at=at: at + timedelta(seconds=rng.randrange(1, 20 * 3600))
        events.append((at, "email.sent", ref))
        fate = rng.random()
        if fate < 0.05:
            events.append((later(), "email.bounced.hard", ref))
            continue
        if fate < 0.10:
            events.append((later(), "email.bounced.soft", {**ref, "category": "unknown"}))
        events.append((later(), "email.delivered", ref))
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            events.append((later(), "email.opened", {**ref, "machine": rng.random() < 0.25}))
        if rng.random() < 0.15:
            events.append(
                (later(), "email.clicked", {**ref, "url": "https://x.test/", "machine": rng.random() < 0.25})
            )
        if rng.random() < 0.08:
            reply_id = new_id("rpl")
            replied = at + timedelta(seconds=rng.randrange(20 * 3600, 22 * 3600))
            events.append(
                (
                    replied,
                    "reply.received",
                    {
                        "reply_id": reply_id,
                        "message_id": ref["message_id"],
                        "campaign_id": ref["campaign_id"],
                        "inbox_id": ref["inbox_id"],
                        "from_email": "x@y.test",
                    },
                )
            )
            events.append(
                (
                    replied + timedelta(seconds=1),
                    "reply.classified",
                    {
                        "reply_id": reply_id,
                        "campaign_id": ref["campaign_id"],
                        "label": rng.choice(LABELS),
                        "confidence": 0.9,
                    },
                )
            )
    events.sort(key=lambda e: e[0])
    return [(at + timedelta(microseconds=i % 1000), kind, data) for i, (at, kind, data) in enumerate(events)]


RAW_FUNNEL = """
WITH scope AS (
  SELECT type, data, created_at FROM events
  WHERE workspace_id = :ws AND livemode AND created_at >= :start AND created_at < :end
), labels AS (
  SELECT data->>'label' AS label,
         row_number() OVER (PARTITION BY data->>'reply_id' ORDER BY created_at DESC) AS rn
  FROM scope WHERE type = 'reply.classified'
)
SELECT
  (SELECT count(*) FROM scope WHERE type = 'email.sent') AS sent,
  (SELECT count(DISTINCT data->>'message_id') FROM scope
    WHERE type = 'email.opened' AND NOT (data->>'machine')::boolean) AS opened_unique,
  (SELECT count(*) FROM scope WHERE type = 'reply.received') AS replied,
  (SELECT count(*) FROM labels WHERE rn = 1 AND label = 'interested') AS interested,
  (SELECT count(*) FROM labels WHERE rn = 1 AND label = 'meeting_booked') AS meeting_booked
"""

RAW_CAMPAIGN = """
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, (data->>'step')::int AS step,
       data->>'variant' AS variant, type, count(*) AS n
FROM events
WHERE workspace_id = :ws AND livemode AND created_at >= :start AND created_at < :end
  AND type IN ('email.sent', 'email.delivered', 'email.bounced.hard', 'email.bounced.soft', 'email.opened',
               'email.clicked')
  AND data->>'campaign_id' = :campaign
GROUP BY 1, 2, 3, 4
"""

TYPE_COUNTER = {
    "email.sent": "sent",
    "email.delivered": "delivered",
    "email.bounced.hard": "bounced_hard",
    "email.bounced.soft": "bounced_soft",
    "email.opened": "opened",
    "email.clicked": "clicked",
}


async def seed(admin_url: str, n_events: int) -> tuple[str, str, str]:
    name = f"imail_bench_analytics_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(
        make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = (
        make_url(admin_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )
    await asyncio.to_thread(upgrade, url)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        ws = new_id("ws")
        await conn.execute(
            "INSERT INTO workspaces (id, name, tier, created_at, updated_at) VALUES ($1, 'bench', 'surge', "
            "now(), now())",
            ws,
        )
        rng = random.Random(7)
        campaigns = [new_id("cmp") for _ in range(20)]
        inboxes = [new_id("inb") for _ in range(10)]
        started = time.perf_counter()
        events = generate(n_events, campaigns, inboxes, rng)
        tenant = Tenant(ws, True)
        fold = Fold()
        for at, kind, data in events:
            fold.add(tenant, kind, data, at)
        records = [
            (new_id("evt"), ws, True, kind, at, orjson.dumps(data).decode()) for at, kind, data in events
        ]
        await conn.copy_records_to_table(
            "events",
            records=records,
            columns=["id", "workspace_id", "livemode", "type", "created_at", "data"],
        )
        daily, coarse, refs = fold.rows()
        for table, rows in (
            ("analytics_daily", daily),
            ("analytics_campaign_daily", coarse),
            ("analytics_refs", refs),
        ):
            columns = list(rows[0])
            await conn.copy_records_to_table(
                table, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
            )
        await conn.execute("ANALYZE")
        print(
            f"seeded {len(events):,} events, {len(daily):,} rollup rows in "
            f"{time.perf_counter() - started:.1f} s"
        )
        return url, ws, campaigns[0]
    finally:
        await conn.close()


async def timed(fn, rounds: int) -> tuple[float, object]:
    best, answer = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        answer = await fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000, answer


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    admin_url = os.environ.get("IMAIL_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url, ws, campaign = await seed(admin_url, args.events)
    database = Database(Settings(database_url=url, secret_key="x" * 32))
    tenant = Tenant(ws, True)
    rng = reports.Range(START, END)
    bounds = {
        "ws": ws,
        "start": datetime(START.year, START.month, START.day, tzinfo=UTC),
        "end": datetime(END.year, END.month, END.day, tzinfo=UTC) + timedelta(days=1),
    }
    try:
        from imail.models import Campaign

        async with database.transaction() as session:  # the campaign row the report checks exists
            session.add(
                Campaign(
                    id=campaign,
                    workspace_id=ws,
                    livemode=True,
                    name="bench",
                    steps=[],
                    daily_limit=100,
                    send_window={},
                    custom_variables=[],
                )
            )
        async with database.transaction() as session:

            async def funnel_rollup():
                return (await reports.funnel_report(session, tenant, rng, None))["totals"]

            async def funnel_raw():
                row = (await session.execute(text(RAW_FUNNEL), bounds)).one()
                return {k: int(v) for k, v in row._mapping.items()}

            async def campaign_rollup():
                return await reports.campaign_report(session, tenant, campaign, rng)

            async def campaign_raw():
                return list(await session.execute(text(RAW_CAMPAIGN), {**bounds, "campaign": campaign}))

            # same answers first
            a, b = await funnel_rollup(), await funnel_raw()
            assert a == b, (a, b)
            report, raw = await campaign_rollup(), await campaign_raw()
            raw_cells: Counter = Counter()
            for day, step, variant, kind, n in raw:
                raw_cells[(day, step, variant, TYPE_COUNTER[kind])] += n
            by_day_raw: Counter = Counter()
            by_step_raw: Counter = Counter()
            for (day, step, variant, counter), n in raw_cells.items():
                by_day_raw[(day, counter)] += n
                by_step_raw[(step, variant, counter)] += n
            direct = list(TYPE_COUNTER.values())
            by_day = Counter({(d["day"], c): d[c] for d in report["days"] for c in direct if d[c]})
            by_step = Counter(
                {(s["step"], s["variant"], c): s[c] for s in report["steps"] for c in direct if s[c]}
            )
            assert by_day == by_day_raw and by_step == by_step_raw, (
                "campaign breakdown differs from the raw count"
            )

            results = {}
            for name, rollup, raw_fn in (
                ("funnel", funnel_rollup, funnel_raw),
                ("campaign 90 days", campaign_rollup, campaign_raw),
            ):
                r_ms, _ = await timed(rollup, args.rounds)
                raw_ms, _ = await timed(raw_fn, max(2, args.rounds // 2))
                r_ms = min(r_ms, (await timed(rollup, args.rounds))[0])
                results[name] = (r_ms, raw_ms)
    finally:
        await database.dispose()
        if os.environ.get("IMAIL_BENCH_KEEP"):
            print("kept", url, ws, campaign)
        else:
            admin = await asyncpg.connect(
                make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
            )
            await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
            await admin.close()

    lines = [
        f"backend PostgreSQL; {args.events:,} events over {DAYS} days; best of {args.rounds} rounds; "
        f"{os.cpu_count()} CPUs"
    ]
    for name, (r_ms, raw_ms) in results.items():
        ok = "ok" if r_ms < 20 and raw_ms / r_ms >= 20 else "MISSED"
        lines.append(
            f"{name:<18} rollups {r_ms:8.2f} ms   raw COUNT…GROUP BY {raw_ms:9.1f} ms   "
            f"×{raw_ms / r_ms:7.1f}  "
            f"(target < 20 ms and ≥ 20×: {ok})"
        )
    print("\n".join(lines))
    if args.record:
        record(args, lines)


def record(args, lines: list[str]) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    section = (
        "## Analytics\n\n`.venv/bin/python "
        f"bench/analytics.py{'' if args.events == 1_000_000 else f' --events {args.events}'} --rounds "
        f"{args.rounds}`"
        f" ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC; shared 2-core machine, numbers vary with load; Python "
        f"{platform.python_version()})\n\n"
        "```\n" + "\n".join(lines) + "\n```\n\n"
        "Rollups: the report functions behind `GET /v1/analytics/funnel` and `GET "
        "/v1/analytics/campaigns/{id}` "
        "(totals, every day, per step and variant), timed in-process on one session (no HTTP). Raw: the same "
        "numbers counted from `events` (JSON payload fields) with COUNT … GROUP BY; both answers are "
        "asserted "
        "equal before timing.\n"
    )
    if "## Analytics" in current:
        current = re.sub(
            r"## Analytics\n.*?(?=\n## |\Z)", section.rstrip("\n") + "\n", current, flags=re.DOTALL
        )
    else:
        current = current.rstrip("\n") + "\n\n" + section
    path.write_text(current)


if __name__ == "__main__":
    asyncio.run(main())
