#!/usr/bin/env python3
"""Lead ingestion benchmark: `POST /v1/leads/bulk` end to end over HTTP against a raw asyncpg COPY, and a
100,000-row CSV import.

In one run, against one real server process (`imail serve --no-workers`) on PostgreSQL:

  baseline  asyncpg `copy_records_to_table("leads", …)` of 5,000 prepared rows (ids, normalized fields,
            zones already computed) into the same table, with its indexes and constraints, in one transaction
  measured  `POST /v1/leads/bulk` with the same 5,000 leads as JSON, timed at the client from the first byte
            sent to the last byte of the 5,000 per-row results: HTTP, auth, rate limit, per-row validation
            (email-validator, zone inference), dedupe and suppression checks, the insert, the commit

Rounds alternate the two (fresh addresses each round; the COPY goes to a second campaign so both insert the
same addresses); the median of each is compared. Target: the API reaches >= 33% of the raw COPY's rate.

Then `POST /v1/leads/import` with a 100,000-row CSV file (a few invalid and repeated rows mixed in), timed
end to end, and the server process's peak resident memory (VmHWM from /proc, since the process started)
read afterwards. Targets: under 30 s, under 300 MB.

    .venv/bin/python bench/leads.py                 # 5 rounds + the CSV import
    .venv/bin/python bench/leads.py --record        # also write the "## Leads" section of bench/RESULTS.md

Environment: IMAIL_BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from imail.kit.ids import new_id
from imail.leads.rows import from_fields

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Leads"
TARGET_RATIO = 0.33
TARGET_IMPORT_S = 30.0
TARGET_RSS_MB = 300.0
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
COLUMNS = (
    "id",
    "workspace_id",
    "livemode",
    "campaign_id",
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "timezone",
    "timezone_source",
    "custom_variables",
    "status",
    "created_at",
    "updated_at",
)
COUNTRIES = ("US", "FR", "DE", "GB", "BR", "JP", "IN", "CA", "AU", "ES")


def pg_dsn(url: str, database: str | None = None) -> str:
    base = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is None:
        return base
    head, _, _ = base.rpartition("/")
    return f"{head}/{database}"


async def pg_admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_cli(args: list[str], env: dict[str, str]) -> str:
    imail = Path(sys.executable).with_name("imail")
    command = [str(imail)] if imail.exists() else [sys.executable, "-m", "imail.cli"]
    done = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        sys.exit(f"bench: imail {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="imail-bench-leads-", suffix=".log", delete=False)  # noqa: SIM115
        imail = Path(sys.executable).with_name("imail")
        command = [str(imail)] if imail.exists() else [sys.executable, "-m", "imail.cli"]
        self.process = subprocess.Popen(
            [*command, "serve", "--no-workers", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.base_url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"bench: server exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        sys.exit(f"bench: server not healthy after {timeout} s:\n{self.log_tail()}")

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS since start) of the server process, in MB."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def log_tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        Path(self.log.name).unlink(missing_ok=True)


def make_leads(tag: str, count: int) -> list[dict]:
    """Realistic rows: names, company, title, a country (zone inference), a custom variable."""
    return [
        {
            "email": f"{tag}.lead{i:06d}@company{i % 997}.example.com",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "company": f"Company {i % 997}",
            "title": "CTO",
            "country": COUNTRIES[i % len(COUNTRIES)],
            "custom_variables": {"pain_point": f"pain {i % 13}"},
        }
        for i in range(count)
    ]


def copy_records(leads: list[dict], workspace_id: str, campaign_id: str, zone: str | None) -> list[tuple]:
    """The rows as the API would store them (normalized, zone resolved), ready for COPY."""
    now = datetime.now(UTC)
    records = []
    for lead in leads:
        p = from_fields(
            lead["email"],
            lead["first_name"],
            lead["last_name"],
            lead["company"],
            lead["title"],
            None,
            lead["country"],
            None,
            lead["custom_variables"],
            zone,
        )
        records.append(
            (
                new_id("lead"),
                workspace_id,
                True,
                campaign_id,
                p.email,
                p.first_name,
                p.last_name,
                p.company,
                p.title,
                p.phone,
                p.country,
                p.timezone,
                p.timezone_source,
                json.dumps(p.custom_variables),
                "active",
                now,
                now,
            )
        )
    return records


async def raw_copy(dsn: str, records: list[tuple]) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("leads", records=records, columns=list(COLUMNS))
        return time.perf_counter() - started
    finally:
        await conn.close()


def api_bulk(client: httpx.Client, headers: dict, campaign_id: str, leads: list[dict]) -> float:
    body = json.dumps({"campaign_id": campaign_id, "leads": leads}).encode()
    started = time.perf_counter()
    response = client.post(
        "/v1/leads/bulk", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json()["created"] != len(leads):
        sys.exit(f"bench: bulk failed: {response.status_code} {response.text[:500]}")
    return elapsed


def write_csv(path: Path, rows: int) -> tuple[int, int, int]:
    """A CSV export: header, rows; every 1000th row has a bad address, every 500th repeats an earlier one."""
    invalid = duplicates = 0
    with path.open("w", newline="") as out:
        out.write("Email,First Name,Last Name,Company,Job Title,Country,City\n")
        for i in range(rows):
            if i % 1000 == 999:
                email, invalid = f"broken-address-{i}", invalid + 1
            elif i % 500 == 499:
                email, duplicates = (
                    f"csv.lead{i - 250:06d}@firm{(i - 250) % 1499}.example.org",
                    duplicates + 1,
                )
            else:
                email = f"csv.lead{i:06d}@firm{i % 1499}.example.org"
            out.write(
                f"{email},First{i},Last{i},Firm {i % 1499},Head of Sales,{COUNTRIES[i % 10]},City {i % 50}\n"
            )
    return rows - invalid - duplicates, invalid, duplicates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="leads per bulk call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--csv-rows", type=int, default=100_000)
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
        # The synchronous import is what this measures (past the threshold it would be a background job).
        "IMAIL_IMPORT_JOB_THRESHOLD": str(args.csv_rows),
    }
    env.pop("IMAIL_REDIS_URL", None)

    asyncio.run(pg_admin(admin_url, f'CREATE DATABASE "{db_name}"'))
    server: Server | None = None
    try:
        run_cli(["db", "upgrade"], env)
        created = json.loads(
            run_cli(["workspaces", "create", "Bench", "--tier", "surge", "--json"], env)
            .strip()
            .splitlines()[-1]
        )
        server = Server(env)
        server.wait_healthy()
        headers = {"Authorization": f"Bearer {created['live_key']}"}
        with httpx.Client(base_url=server.base_url, timeout=120.0) as client:
            campaigns = []
            for name in ("bench api", "bench copy", "bench csv"):
                response = client.post(
                    "/v1/campaigns",
                    headers=headers,
                    json={
                        "name": name,
                        "inbox_ids": [],
                        "custom_variables": ["pain_point"],
                        "steps": [{"subject": "Hi {{first_name|there}}", "body": "<p>{{pain_point}}</p>"}],
                    },
                )
                if response.status_code != 201:
                    sys.exit(f"bench: campaign create failed: {response.text}")
                campaigns.append(response.json())
            api_campaign, copy_campaign, csv_campaign = campaigns
            zone = api_campaign["send_window"]["timezone"]

            # Warm-up (imports, prepared statements, caches), not measured.
            api_bulk(client, headers, api_campaign["id"], make_leads("warm", 200))
            asyncio.run(
                raw_copy(
                    dsn,
                    copy_records(make_leads("warm", 200), created["workspace_id"], copy_campaign["id"], zone),
                )
            )

            api_times, copy_times = [], []
            for r in range(args.rounds):
                leads = make_leads(f"r{r}", args.rows)
                records = copy_records(leads, created["workspace_id"], copy_campaign["id"], zone)
                copy_times.append(asyncio.run(raw_copy(dsn, records)))
                api_times.append(api_bulk(client, headers, api_campaign["id"], leads))
                print(
                    f"bench: round {r + 1}: copy {copy_times[-1] * 1000:.0f} ms, api "
                    f"{api_times[-1] * 1000:.0f} ms",
                    flush=True,
                )
            api_s, copy_s = statistics.median(api_times), statistics.median(copy_times)
            ratio = copy_s / api_s

            rss_before, _ = server.memory_mb()
            with tempfile.TemporaryDirectory() as tmp:
                csv_path = Path(tmp) / "leads.csv"
                expect_created, expect_invalid, expect_dupes = write_csv(csv_path, args.csv_rows)
                size_mb = csv_path.stat().st_size / 1e6
                with csv_path.open("rb") as handle:
                    started = time.perf_counter()
                    response = client.post(
                        "/v1/leads/import",
                        headers=headers,
                        data={
                            "campaign_id": csv_campaign["id"],
                            "mapping": json.dumps(
                                {
                                    "email": "Email",
                                    "first_name": "First Name",
                                    "last_name": "Last Name",
                                    "company": "Company",
                                    "title": "Job Title",
                                    "country": "Country",
                                    "custom_variables": {"city": "City"},
                                }
                            ),
                        },
                        files={"file": ("leads.csv", handle, "text/csv")},
                    )
                    import_s = time.perf_counter() - started
            if response.status_code != 200:
                sys.exit(f"bench: import failed: {response.status_code} {response.text[:500]}")
            result = response.json()
            got = (result["created"], result["invalid"], result["duplicates"])
            if (
                got != (expect_created, expect_invalid, expect_dupes)
                or len(result["results"]) != args.csv_rows
            ):
                sys.exit(
                    f"bench: import counts {got}, expected {(expect_created, expect_invalid, expect_dupes)}"
                )
            rss_after, rss_peak = server.memory_mb()

        ok_ratio = "met" if ratio >= TARGET_RATIO else "MISSED"
        ok_time = "met" if import_s < TARGET_IMPORT_S else "MISSED"
        ok_rss = "met" if rss_peak < TARGET_RSS_MB else "MISSED"
        lines = [
            f"bulk {args.rows} leads, median of {args.rounds} rounds:",
            f"  raw asyncpg COPY      {copy_s * 1000:8.1f} ms  ({args.rows / copy_s:>9,.0f} rows/s)",
            f"  POST /v1/leads/bulk   {api_s * 1000:8.1f} ms  ({args.rows / api_s:>9,.0f} rows/s)",
            f"  ratio API / COPY      {ratio:8.1%}   (target >= {TARGET_RATIO:.0%}: {ok_ratio})",
            (
                f"CSV import {args.csv_rows:,} rows ({size_mb:.1f} MB; {expect_created:,} created, "
                f"{expect_invalid} invalid, "
                f"{expect_dupes} repeated):"
            ),
            f"  POST /v1/leads/import {import_s:8.2f} s   ({args.csv_rows / import_s:>9,.0f} rows/s; target "
            f"< {TARGET_IMPORT_S:.0f} s: {ok_time})",
            (
                f"  server RSS            {rss_before:6.0f} MB before, {rss_after:.0f} MB after, peak "
                f"{rss_peak:.0f} MB "
                f"(target < {TARGET_RSS_MB:.0f} MB: {ok_rss})"
            ),
        ]
        print()
        print("\n".join(lines))
        if args.record:
            record(section(lines, args))
            print(f"bench: wrote the {SECTION!r} section of {RESULTS.relative_to(ROOT)}")
        return 0 if ok_ratio == ok_time == ok_rss == "met" else 1
    finally:
        if server is not None:
            server.stop()
        asyncio.run(pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))


def section(lines: list[str], args) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    body = "\n".join(lines)
    return f"""{SECTION}

`bench/leads.py` — `POST /v1/leads/bulk` (5,000 leads, end to end over HTTP to one `imail serve --no-workers`
process on PostgreSQL: auth, rate limit, per-row validation with email-validator, zone inference, set-based
dedupe and suppression checks, one multi-row insert, commit, 5,000 per-row results) against a raw asyncpg
`copy_records_to_table` of the same 5,000 prepared rows into the same `leads` table in the same run; then a
{args.csv_rows:,}-row CSV `POST /v1/leads/import` with the server's peak RSS (VmHWM) read from /proc.

```
{body}
```

Measured {when} on {platform.machine()}, {os.cpu_count()} cores (shared; load average {load}), Python
{platform.python_version()}. Reproduce: `.venv/bin/python bench/leads.py --record`.
"""


def record(text: str) -> None:
    """Replace (or add) the "## Leads" section of bench/RESULTS.md, keeping every other section."""
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    out: list[str] = []
    skipping = replaced = False
    for line in existing.splitlines():
        if line.strip() == SECTION:
            out.extend(text.rstrip("\n").splitlines())
            out.append("")
            skipping = replaced = True
            continue
        if skipping and line.startswith("## "):
            skipping = False
        if not skipping:
            out.append(line)
    if not replaced:
        if out and out[-1].strip():
            out.append("")
        out.extend(text.rstrip("\n").splitlines())
    RESULTS.write_text("\n".join(out).rstrip("\n") + "\n")


if __name__ == "__main__":
    sys.exit(main())
