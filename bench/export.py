#!/usr/bin/env python3
"""Lead export benchmark: `GET /v1/leads/export` of 100,000 leads against 10,000, on PostgreSQL, each by a
fresh `imail serve --no-workers` process, reading the server's peak resident memory (VmHWM from /proc).

The export reads keyset pages of 1,000 leads (each in its own short read) and streams their CSV text, so the
server's memory should not grow with the number of leads exported: the peak RSS growth over the process's warm
state (one small export first) of the 100,000-lead export should be about that of the 10,000-lead one.

Leads are written with asyncpg COPY (this measures the export, not the ingestion): 100,000 in one campaign, of
which 10,000 in a second one, with eight custom variable names in use, some tags and formula-looking names.

    .venv/bin/python bench/export.py            # print the figures
    .venv/bin/python bench/export.py --record   # also write the "## Export" section of bench/RESULTS.md

Environment: IMAIL_BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from imail.kit.ids import new_ids
from leads import COLUMNS, Server, pg_admin, pg_dsn, run_cli

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Export"
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
VARIABLES = ("city", "plan", "seats", "industry", "source", "score", "referrer", "notes")


def lead_records(workspace_id: str, campaign_id: str, count: int, tag: str) -> list[tuple]:
    now = datetime.now(UTC)
    records = []
    for i, lead_id in enumerate(new_ids("lead", count)):
        custom = {name: f"{name}-{i % 97}" for name in VARIABLES[: 3 + i % 6]}
        custom["score"] = i % 1000 - 500  # numbers, negative ones included
        records.append(
            (
                lead_id,
                workspace_id,
                True,
                campaign_id,
                f"{tag}-{i}@example.com",
                '=HYPERLINK("http://x","y")' if i % 50 == 0 else f"First{i}",
                f"Last{i}",
                "Acme Corp",
                "Head of Sales",
                None,
                "US",
                "UTC",
                "default",
                orjson.dumps(custom).decode(),
                "active",
                now,
                now,
            )
        )
    return records


async def seed(dsn: str, workspace_id: str, campaigns: dict[str, str], big: int, small: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for campaign, count, tag in ((campaigns["small"], small, "s"), (campaigns["big"], big - small, "b")):
            for start in range(0, count, 20_000):
                records = lead_records(workspace_id, campaign, min(20_000, count - start), f"{tag}{start}")
                await conn.copy_records_to_table("leads", records=records, columns=COLUMNS)
                tags = [(r[0], workspace_id, True, "vip") for r in records[::3]]
                await conn.copy_records_to_table(
                    "lead_tags", records=tags, columns=("lead_id", "workspace_id", "livemode", "tag")
                )
        await conn.execute("ANALYZE leads; ANALYZE lead_tags")
    finally:
        await conn.close()


def export(server: Server, headers: dict, query: str) -> tuple[int, int, float]:
    """(data rows, bytes, seconds) of one streamed export, read and discarded by the client."""
    rows = size = 0
    started = time.perf_counter()
    with (
        httpx.Client(base_url=server.base_url, timeout=600.0) as client,
        client.stream("GET", f"/v1/leads/export{query}", headers=headers) as response,
    ):
        if response.status_code != 200:
            sys.exit(f"bench: export answered {response.status_code}: {response.read()[:500]!r}")
        for chunk in response.iter_bytes():
            size += len(chunk)
            rows += chunk.count(b"\n")  # CRLF line ends; a CR and its LF can fall in two chunks
    return rows - 1, size, time.perf_counter() - started


def measure(env: dict, headers: dict, query: str) -> dict:
    """A fresh server: a warm-up export (first-use allocations), then the measured one; peak RSS around it."""
    server = Server(env)
    try:
        server.wait_healthy(180.0)
        export(server, headers, "?email=nobody@example.com")
        export(server, headers, "?tag=none")
        _, warm_peak = server.memory_mb()
        rows, size, seconds = export(server, headers, query)
        _, peak = server.memory_mb()
        return {"rows": rows, "bytes": size, "seconds": seconds, "warm_peak": warm_peak, "peak": peak}
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    args = parser.parse_args()

    admin_url = os.environ.get("IMAIL_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    db_name = f"imail_bench_{uuid.uuid4().hex[:12]}"
    dsn = pg_dsn(admin_url, db_name)
    env = {
        **os.environ,
        "IMAIL_DATABASE_URL": "postgresql+asyncpg://" + dsn.split("://", 1)[1],
        "IMAIL_SECRET_KEY": SECRET,
        "IMAIL_LOG_LEVEL": "WARNING",
    }
    env.pop("IMAIL_REDIS_URL", None)
    asyncio.run(pg_admin(admin_url, f'CREATE DATABASE "{db_name}"'))
    try:
        run_cli(["db", "upgrade"], env)
        created = json.loads(
            run_cli(["workspaces", "create", "Bench", "--tier", "surge", "--json"], env)
            .strip()
            .splitlines()[-1]
        )
        headers = {"Authorization": f"Bearer {created['live_key']}"}
        server = Server(env)
        try:
            server.wait_healthy(180.0)
            with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
                campaigns = {}
                for name in ("small", "big"):
                    body = {
                        "name": f"export {name}",
                        "inbox_ids": [],
                        "steps": [{"subject": "Hi", "body": "<p>Hi</p>"}],
                    }
                    response = client.post("/v1/campaigns", headers=headers, json=body)
                    response.raise_for_status()
                    campaigns[name] = response.json()["id"]
        finally:
            server.stop()
        seeded = time.perf_counter()
        asyncio.run(seed(dsn, created["workspace_id"], campaigns, args.leads, args.small))
        print(f"seeded {args.leads:,} leads in {time.perf_counter() - seeded:.1f} s", flush=True)

        small = measure(env, headers, f"?campaign_id={campaigns['small']}")
        big = measure(env, headers, "")
    finally:
        asyncio.run(pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))

    load = os.getloadavg()
    lines = [
        "export, one fresh server process each, peak RSS (VmHWM) after a warm-up export and after the export:"
    ]
    for result in (small, big):
        growth = result["peak"] - result["warm_peak"]
        lines.append(
            f"  {result['rows']:>7,} leads  {result['bytes'] / 1e6:6.1f} MB CSV  {result['seconds']:6.2f} s "
            f"({result['rows'] / result['seconds']:8,.0f} rows/s)  peak {result['warm_peak']:5.0f} → "
            f"{result['peak']:5.0f} MB (+{growth:.0f} MB)"
        )
    small_growth = small["peak"] - small["warm_peak"]
    big_growth = big["peak"] - big["warm_peak"]
    ratio_rows = big["rows"] / max(small["rows"], 1)
    lines.append(
        f"  {ratio_rows:.0f}x the rows; peak RSS growth {big_growth:.0f} MB against {small_growth:.0f} MB "
        f"(constant memory: it does not scale with the rows)"
    )
    report = "\n".join(lines)
    print(report)
    moment = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores (shared; load average {load[0]:.2f}, "
        f"{load[1]:.2f}, {load[2]:.2f})"
    )
    if args.record:
        section = (
            f"{SECTION}\n\n`bench/export.py` — `GET /v1/leads/export` streamed to a client that discards "
            "it, by one\n"
            f"`imail serve --no-workers` process on PostgreSQL: {args.small:,} leads (one campaign) and then "
            f"{args.leads:,}\n(the whole ledger), each on a fresh process after a small warm-up export; "
            "eight "
            f"custom variable\ncolumns, tags, formula-looking names neutralised.\n\n```\n{report}\n```\n\n"
            f"Measured {moment} on {machine}, Python\n{platform.python_version()}. "
            f"Reproduce: `.venv/bin/python bench/export.py --record`.\n"
        )
        text = RESULTS.read_text()
        if SECTION + "\n" in text:
            head, _, rest = text.partition(SECTION + "\n")
            _, sep, tail = rest.partition("\n## ")
            text = head + section + ("\n## " + tail if sep else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
