#!/usr/bin/env python3
"""API overhead benchmark: what an authenticated, rate-limited list costs against a trivial endpoint.

In one run, against one server (`imail serve --no-workers --processes 2`) on PostgreSQL + Redis:

  baseline  GET /healthz                  unauthenticated, touches nothing
  measured  GET /v1/keys?limit=25         bearer key (checked against the database, then cached per process
                                          for 3 s), one Redis script (token bucket + revocation counter), one
                                          indexed 25-row keyset query on an autocommit read session, pydantic
                                          schema + middleware + versioning

The workspace is Apex with a negotiated limit of 10^8/min (burst 10^8): the limiter runs on every request
but never refuses. The bench makes its own throwaway PostgreSQL database, migrates it with `imail db
upgrade`, seeds 30 keys through the API, warms up, measures each endpoint for a fixed duration at 32
concurrent connections, prints the table and the ratio, and drops the database.

Load generator: `wrk` (a separate C process; `apt-get install wrk`) when on PATH, otherwise a built-in
multi-process asyncio HTTP/1.1 client (`--client python` forces it).

    .venv/bin/python bench/api.py                      # 3 s warm-up + 10 s per endpoint
    .venv/bin/python bench/api.py --record             # also write the "## API" section of bench/RESULTS.md

Environment: IMAIL_BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
IMAIL_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import redis as redis_lib

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## API"
TARGET_RATIO = 0.12
TARGET_P99_MS = 100.0
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
SEED_KEYS = 30  # >= 26: a full page of 25 with has_more


@dataclass
class Result:
    name: str
    path: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx answers, socket errors and timeouts
    cpu: dict[str, float] | None = None  # CPU seconds used during the run, per component (see CpuMeter)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def cpu_ms_per_request(self, component: str) -> float:
        return 1000 * (self.cpu or {}).get(component, 0.0) / max(1, self.requests)


# --------------------------------------------------------------------------------------------- setup


def imail_bin() -> str:
    script = Path(sys.executable).with_name("imail")
    if not script.exists():
        sys.exit(f"bench: {script} not found; run `make install` first")
    return str(script)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_dsn(url: str, database: str | None = None) -> str:
    """A plain libpq-style DSN from a postgresql[+asyncpg]:// URL, optionally for another database."""
    scheme, rest = url.split("://", 1)
    if database is not None:
        rest = rest.rsplit("/", 1)[0] + "/" + database
    return "postgresql://" + rest


async def pg_admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn(admin_url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run([imail_bin(), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"bench: imail {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


class ServerProcess:
    """`imail serve --no-workers --processes N` in its own process group, stopped whatever happens."""

    def __init__(self, env: dict[str, str], processes: int):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="imail-bench-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [
                imail_bin(),
                "serve",
                "--no-workers",
                "--processes",
                str(processes),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"bench: server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        sys.exit(f"bench: server not healthy after {timeout} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def pids(self) -> list[int]:
        """The server and its uvicorn worker processes (for profiling)."""
        found = subprocess.run(["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in found.split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(25)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        try:  # uvicorn's worker processes share the group; make sure none outlives the bench
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()
        os.unlink(self.log.name)


def seed(base_url: str, live_key: str) -> None:
    """SEED_KEYS live keys in the workspace (it has one), created through the API; check the page shape."""
    headers = {"Authorization": f"Bearer {live_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as http:
        for n in range(SEED_KEYS - 1):
            created = http.post("/v1/keys", json={"name": f"bench-{n}"})
            if created.status_code != 201:
                sys.exit(f"bench: seeding keys failed: {created.status_code} {created.text[:300]}")
        page = http.get("/v1/keys", params={"limit": 25})
        body = page.json()
        if page.status_code != 200 or len(body["data"]) != 25 or not body["pagination"]["has_more"]:
            sys.exit(f"bench: expected a full page of 25 with has_more: {page.status_code} {page.text[:300]}")
        if "x-ratelimit-limit" not in page.headers:
            sys.exit("bench: the list answered without X-RateLimit-* headers: is the limiter running?")


# --------------------------------------------------------------------------------------------- CPU accounting

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
COMPONENTS = ("server", "postgres", "redis", "load generator", "rest of machine")


def _proc_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy() -> float:
    """Non-idle CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds spent by each component during a run: the server's processes, the PostgreSQL backends
    serving the bench database, Redis (whole server: shared with anything else using it), the load
    generator (reaped child processes) and the rest of the machine. Counts CPU time, not wall time, so
    it says where the work goes even on a busy machine."""

    def __init__(self, server: ServerProcess, admin_url: str, db_name: str, redis_url: str):
        self.server = server
        self.admin_url = admin_url
        self.db_name = db_name
        self.redis = redis_lib.Redis.from_url(redis_url, socket_timeout=5)

    def _backend_pids(self) -> list[int]:
        async def query() -> list[int]:
            conn = await asyncpg.connect(pg_dsn(self.admin_url), timeout=10)
            try:
                rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.db_name)
            finally:
                await conn.close()
            return [r["pid"] for r in rows]

        return asyncio.run(query())

    def snapshot(self) -> dict:
        info = self.redis.info("cpu")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "server": {pid: _proc_cpu(pid) for pid in self.server.pids()},
            "postgres": {pid: _proc_cpu(pid) for pid in self._backend_pids()},
            "redis": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
            "load generator": children.ru_utime + children.ru_stime,
            "machine": _machine_busy(),
        }

    @staticmethod
    def delta(before: dict, after: dict) -> dict[str, float]:
        used: dict[str, float] = {}
        for name in ("server", "postgres"):
            pids = set(before[name]) | set(after[name])
            used[name] = sum(max(0.0, after[name].get(p, 0.0) - before[name].get(p, 0.0)) for p in pids)
        for name in ("redis", "load generator"):
            used[name] = max(0.0, after[name] - before[name])
        ours = sum(used.values())
        used["rest of machine"] = max(0.0, after["machine"] - before["machine"] - ours)
        return used


# --------------------------------------------------------------------------------------------- wrk

WRK_SCRIPT = """
{auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"errors\\": %d, \\"p50_us\\": %d, " ..
    "\\"p90_us\\": %d, \\"p99_us\\": %d, \\"max_us\\": %d}}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def run_wrk(url: str, headers: dict[str, str], connections: int, seconds: float, threads: int) -> dict:
    auth = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(auth=auth))
    try:
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            script.name,
            url,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script.name)
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            raw = json.loads(line[len("BENCHJSON ") :])
            return {
                "requests": raw["requests"],
                "seconds": raw["duration_us"] / 1e6,
                "errors": raw["errors"],
                "p50_ms": raw["p50_us"] / 1000,
                "p90_ms": raw["p90_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000,
                "max_ms": raw["max_us"] / 1000,
            }
    sys.exit(f"bench: wrk gave no result ({done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")


# --------------------------------------------------------------------------------------------- python client


async def _connection_loop(
    host: str, port: int, request: bytes, until: float, latencies: list[float]
) -> tuple[int, int]:
    """One keep-alive HTTP/1.1 connection sending `request` back to back until `until`; (ok, errors)."""
    ok = errors = 0
    reader = writer = None
    while time.perf_counter() < until:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            started = time.perf_counter()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await asyncio.wait_for(reader.readexactly(length), 5)
            latencies.append(time.perf_counter() - started)
            if 200 <= status < 300:
                ok += 1
            else:
                errors += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()
    return ok, errors


def _python_worker(args: tuple) -> tuple[int, int, list[float]]:
    host, port, request, connections, start_at, seconds = args

    async def main() -> tuple[int, int, list[float]]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        until = time.perf_counter() + seconds
        latencies: list[float] = []
        counts = await asyncio.gather(
            *(_connection_loop(host, port, request, until, latencies) for _ in range(connections))
        )
        return sum(c[0] for c in counts), sum(c[1] for c in counts), latencies

    return asyncio.run(main())


def run_python(url: str, headers: dict[str, str], connections: int, seconds: float, processes: int) -> dict:
    parsed = httpx.URL(url)
    lines = [f"GET {parsed.raw_path.decode()} HTTP/1.1", f"Host: {parsed.host}:{parsed.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    shares = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    start_at = time.time() + 1.0
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        parts = pool.map(
            _python_worker, [(parsed.host, parsed.port, request, n, start_at, seconds) for n in shares]
        )
    latencies = sorted(x for part in parts for x in part[2])

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, math.ceil(p / 100 * len(latencies)) - 1)] * 1000
            if latencies
            else 0.0
        )

    return {
        "requests": sum(p[0] for p in parts),
        "seconds": seconds,
        "errors": sum(p[1] for p in parts),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
    }


# --------------------------------------------------------------------------------------------- run


def measure(
    client: str,
    name: str,
    base_url: str,
    path: str,
    headers: dict[str, str],
    args,
    meter: CpuMeter | None = None,
) -> Result:
    url = base_url + path
    before = meter.snapshot() if meter else None
    if client == "wrk":
        raw = run_wrk(url, headers, args.connections, args.duration, args.wrk_threads)
    else:
        raw = run_python(url, headers, args.connections, args.duration, args.client_processes)
    cpu = CpuMeter.delta(before, meter.snapshot()) if meter and before else None
    return Result(name=name, path=path, cpu=cpu, **raw)


def table(results: list[Result]) -> str:
    rows = [
        "| endpoint | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| `{r.path}` ({r.name}) | {r.requests} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p90_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.max_ms:.1f} | {r.errors} |"
        )
    return "\n".join(rows)


def cpu_table(results: list[Result]) -> str:
    rows = [
        "| endpoint | " + " | ".join(COMPONENTS) + " | ours total |",
        "|---|" + "---:|" * (len(COMPONENTS) + 1),
    ]
    for r in results:
        cells = [r.cpu_ms_per_request(c) for c in COMPONENTS]
        ours = sum(cells[:-1])
        rows.append(f"| `{r.path}` | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {ours:.3f} |")
    return "\n".join(rows)


def record(text: str) -> None:
    """Replace (or add) the "## API" section of bench/RESULTS.md, keeping every other section."""
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    lines = existing.splitlines()
    out: list[str] = []
    skipping = replaced = False
    for line in lines:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per endpoint")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2, help="server (uvicorn) processes")
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate the two endpoints this many times; best kept"
    )
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--client-processes", type=int, default=2, help="python client only")
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="py-spy record every server process for SECONDS during an extra list run",
    )
    args = parser.parse_args()

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    if client == "wrk" and not shutil.which("wrk"):
        sys.exit("bench: wrk not on PATH (apt-get install wrk), or use --client python")

    admin_url = os.environ.get("IMAIL_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("IMAIL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    db_name = f"imail_bench_{uuid.uuid4().hex[:12]}"
    database_url = "postgresql+asyncpg://" + pg_dsn(admin_url, db_name).split("://", 1)[1]
    env = {
        **os.environ,
        "IMAIL_DATABASE_URL": database_url,
        "IMAIL_REDIS_URL": redis_url,
        "IMAIL_SECRET_KEY": SECRET,
        "IMAIL_LOG_LEVEL": "WARNING",
        # One load generator is one client address: its public bucket would answer the baseline with 429s.
        "IMAIL_PUBLIC_RATE_LIMIT_PER_MINUTE": "100000000",
        "IMAIL_PUBLIC_RATE_LIMIT_BURST": "100000000",
    }

    asyncio.run(pg_admin(admin_url, f'CREATE DATABASE "{db_name}"'))
    server: ServerProcess | None = None
    try:
        run_cli(["db", "upgrade"], env)
        created = json.loads(
            run_cli(
                [
                    "workspaces",
                    "create",
                    "Bench",
                    "--tier",
                    "apex",
                    "--rate-limit-per-minute",
                    "100000000",
                    "--rate-limit-burst",
                    "100000000",
                    "--json",
                ],
                env,
            )
            .strip()
            .splitlines()[-1]
        )
        server = ServerProcess(env, args.processes)
        server.wait_healthy()
        seed(server.base_url, created["live_key"])

        auth = {"Authorization": f"Bearer {created['live_key']}"}
        endpoints = [("trivial", "/healthz", {}), ("list", "/v1/keys?limit=25", auth)]
        print(
            f"bench: {client} load, {args.connections} connections, server: imail serve --no-workers "
            f"--processes {args.processes}, PostgreSQL + Redis; warm-up {args.warmup:g} s, "
            f"{args.duration:g} s each",
            flush=True,
        )
        if args.warmup > 0:
            warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
            for name, path, headers in endpoints:
                measure(client, name, server.base_url, path, headers, warm)

        meter = CpuMeter(server, admin_url, db_name, redis_url)
        best: dict[str, Result] = {}
        for _ in range(args.rounds):
            for name, path, headers in endpoints:
                result = measure(client, name, server.base_url, path, headers, args, meter)
                if result.errors:
                    print(
                        f"bench: {result.errors} errors on {path} (non-2xx or socket "
                        f"errors):\n{server.log_tail()}"
                    )
                    return 1
                if name not in best or result.rps > best[name].rps:
                    best[name] = result

        if args.profile > 0:
            profile(server, client, auth, args)

        results = [best["trivial"], best["list"]]
        ratio = best["list"].rps / best["trivial"].rps
        verdict_ratio = "met" if ratio >= TARGET_RATIO else "MISSED"
        verdict_p99 = "met" if best["list"].p99_ms < TARGET_P99_MS else "MISSED"
        summary = (
            f"ratio list/trivial: {ratio:.1%} (target >= {TARGET_RATIO:.0%}: {verdict_ratio}); "
            f"list p99 {best['list'].p99_ms:.1f} ms (target < {TARGET_P99_MS:.0f} ms: {verdict_p99})"
        )
        print()
        print(table(results))
        print()
        print("CPU milliseconds per request, by component (CPU time, not wall time):")
        print(cpu_table(results))
        print()
        print(summary)
        if args.record:
            record(results_section(results, summary, client, args))
            print(f"bench: wrote the {SECTION!r} section of {RESULTS.relative_to(ROOT)}")
        return 0
    finally:
        if server is not None:
            server.stop()
        asyncio.run(pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))


def profile(server: ServerProcess, client: str, auth: dict[str, str], args) -> None:
    """py-spy (--gil: only where a process holds the GIL, i.e. its CPU) on every server worker under list
    load."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print("bench: --profile needs py-spy (.venv/bin/pip install py-spy)")
        return
    workers = [p for p in server.pids() if p != server.process.pid]
    outputs = [f"/tmp/imail-bench-profile-{pid}.txt" for pid in workers]
    spies = [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--gil",
                "-r",
                "200",
                "-f",
                "raw",
                "-d",
                str(int(args.profile)),
                "-p",
                str(pid),
                "-o",
                out,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid, out in zip(workers, outputs)
    ]
    load = argparse.Namespace(**{**vars(args), "duration": args.profile + 2})
    measure(client, "list", server.base_url, "/v1/keys?limit=25", auth, load)
    for spy_process in spies:
        spy_process.wait(60)
    print("bench: py-spy collapsed stacks in " + ", ".join(outputs))


def results_section(results: list[Result], summary: str, client: str, args) -> str:
    load = os.getloadavg()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""{SECTION}

`bench/api.py` — an authenticated, rate-limited `GET /v1/keys?limit=25` (bearer key, cached per process for
3 s after its lookup; one Redis script for the token bucket and the revocation counter; one indexed 25-row \
keyset
query on an autocommit read session; pydantic schema, middleware, `Imail-Version`) against
the same app's unauthenticated `GET /healthz`, same run, same server: `imail serve --no-workers --processes
{args.processes}` on PostgreSQL + Redis, Apex workspace with a 10^8/min negotiated limit (the limiter runs on
every request and never refuses). Load: {client}, {args.connections} connections, {args.warmup:g} s warm-up
then {args.duration:g} s per \
endpoint{f", best of {args.rounds} alternated rounds" if args.rounds > 1 else ""}.
Machine: {os.cpu_count()} cores shared by client, server, PostgreSQL and Redis; Python
{platform.python_version()}; load average at the end {load[0]:.2f}. Measured {when}.

{table(results)}

CPU milliseconds per request, by component (CPU time, so it holds on a busy machine; "redis" is the whole
Redis server, "rest of machine" is everything else that ran meanwhile):

{cpu_table(results)}

{summary}

Reproduce: `.venv/bin/python bench/api.py{" --rounds " + str(args.rounds) if args.rounds > 1 else ""} \
--record`
(needs PostgreSQL on 127.0.0.1:5432 with trust auth, Redis on 127.0.0.1:6379, and `wrk` for the C load
generator; without it a built-in multi-process Python client is used).
"""


if __name__ == "__main__":
    sys.exit(main())
