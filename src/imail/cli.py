"""The `imail` command.

Imports of imail modules sit inside the commands that use them so that `imail --help` and the light commands
start without loading the whole application, not to break an import cycle: the commands import what the app
imports (tests/platform/test_layering.py allows function-local imports here only)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from imail.config import Settings, SettingsError, load_settings
from imail.kit import memory, process

app = typer.Typer(
    help="imail: self-hostable cold-email outreach server.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
workspaces_app = typer.Typer(help="Workspaces.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(keys_app, name="keys")
secrets_app = typer.Typer(help="Encryption of stored inbox credentials.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")
replies_app = typer.Typer(help="Inbound replies.", no_args_is_help=True)
app.add_typer(replies_app, name="replies")
analytics_app = typer.Typer(help="Analytics rollups.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")
leads_app = typer.Typer(help="Leads.", no_args_is_help=True)
app.add_typer(leads_app, name="leads")


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
        settings.resolved_secret_key()
    except SettingsError as exc:
        typer.echo(f"imail: bad setting: {exc}", err=True)
        raise typer.Exit(2) from None
    from imail.kit.logging import configure_logging
    from imail.wiring import install_subscribers

    configure_logging(settings.log_level, settings.log_json)
    install_subscribers()  # a command that records events owes their webhook deliveries and rollups too
    return settings


def run_in_session(
    settings: Settings,
    action: Callable[[Any], Awaitable[Any]],
    audit: tuple[str, Callable[[Any], tuple[str, bool, str | None] | None]] | None = None,
) -> Any:
    """Run `action(session)` in one transaction. With `audit` = (command, what(result) → (workspace id,
    livemode, object id), or None when nothing changed), the change is recorded in that workspace's audit log
    (actor `cli`) in the same transaction. Workspace-wide changes are recorded in the live ledger's log."""
    from imail.audit.service import record_cli_change
    from imail.db import Database
    from imail.errors import ImailError
    from imail.kit.tenancy import Tenant

    async def main() -> Any:
        database = Database(settings)
        try:
            async with database.transaction() as session:
                result = await action(session)
                if audit is not None:
                    command, what = audit
                    target = what(result)
                    if target is not None:
                        workspace_id, livemode, object_id = target
                        await record_cli_change(session, Tenant(workspace_id, livemode), command, object_id)
                return result
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except ImailError as exc:
        typer.echo(f"imail: {exc.message}", err=True)
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Apply Alembic migrations to IMAIL_DATABASE_URL."""
    from imail.migrations import upgrade

    settings = settings_or_exit()
    upgrade(settings.database_url, revision, settings)
    typer.echo(f"database at {revision}")


@workspaces_app.command("create")
def workspaces_create(
    name: str,
    tier: Annotated[str, typer.Option(help="starter, surge, velocity or apex")] = "surge",
    rate_limit_per_minute: Annotated[int | None, typer.Option(help="Apex: negotiated sustained rate")] = None,
    rate_limit_burst: Annotated[int | None, typer.Option(help="Apex: negotiated burst")] = None,
    contact_email: Annotated[
        str | None, typer.Option(help="where operator notices go (deprecation warnings)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create a workspace and print its first live and test keys (shown once)."""
    from imail.workspaces.service import create_workspace

    settings = settings_or_exit()
    created = run_in_session(
        settings,
        lambda s: create_workspace(s, name, tier, rate_limit_per_minute, rate_limit_burst, contact_email),
        audit=("workspaces create", lambda c: (c.workspace.id, True, c.workspace.id)),
    )
    _print_workspace(created, as_json)


@workspaces_app.command("set-contact")
def workspaces_set_contact(
    workspace_id: str, contact_email: Annotated[str, typer.Argument(help="empty to clear")]
) -> None:
    """Set the address that gets the workspace's operator notices (deprecation warnings)."""
    from imail.workspaces.service import set_contact

    settings = settings_or_exit()
    workspace = run_in_session(
        settings,
        lambda s: set_contact(s, workspace_id, contact_email),
        audit=("workspaces set-contact", lambda w: (w.id, True, w.id)),
    )
    typer.echo(f"workspace {workspace.id}: contact {workspace.contact_email or '(none)'}")


@workspaces_app.command("set-footer")
def workspaces_set_footer(
    workspace_id: str,
    address: Annotated[
        str | None, typer.Option(help="postal address; lines separated by \\n; empty clears")
    ] = None,
    text: Annotated[
        str | None, typer.Option(help="opt-out line with {{unsubscribe_url}}; empty: the default")
    ] = None,
) -> None:
    """Set the footer campaigns with include_footer add to every email (as PATCH /v1/workspace does)."""
    from imail.workspaces.service import set_footer

    changes = {
        name: value.replace("\\n", "\n")
        for name, value in (("postal_address", address), ("footer_text", text))
        if value is not None
    }
    settings = settings_or_exit()
    workspace = run_in_session(
        settings,
        lambda s: set_footer(s, workspace_id, **changes),
        audit=("workspaces set-footer", lambda w: (w.id, True, w.id)),
    )
    typer.echo(
        f"workspace {workspace.id}: postal address {workspace.postal_address or '(none)'!r}, "
        f"opt-out line {workspace.footer_text or '(default)'!r}"
    )


@app.command("demo")
def demo(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Ensure the demo workspace exists and print fresh live and test keys for it."""
    from imail.workspaces.service import demo_workspace

    settings = settings_or_exit()
    created = run_in_session(
        settings, demo_workspace, audit=("demo", lambda c: (c.workspace.id, True, c.workspace.id))
    )
    _print_workspace(created, as_json)


def _print_workspace(created: Any, as_json: bool) -> None:
    body = {"workspace_id": created.workspace.id, "live_key": created.live_key, "test_key": created.test_key}
    if as_json:
        typer.echo(json.dumps(body))
        return
    typer.echo(f"workspace {created.workspace.id} ({created.workspace.name}, {created.workspace.tier})")
    typer.echo(f"  live key: {created.live_key}")
    typer.echo(f"  test key: {created.test_key}")
    typer.echo("  (keys are shown once: store them now)")


@keys_app.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option(help="ws_… id")],
    mode: Annotated[str, typer.Option(help="live or test")] = "live",
    name: Annotated[str, typer.Option()] = "",
    scope: Annotated[
        list[str] | None, typer.Option(help="Repeat for several, e.g. --scope analytics:read")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue a new API key (shown once)."""
    from imail.auth import scopes as scope_rules
    from imail.auth.service import issue_key

    if mode not in ("live", "test"):
        typer.echo("imail: --mode must be live or test", err=True)
        raise typer.Exit(2)
    try:
        scopes = scope_rules.validate(scope) if scope else None
    except ValueError as exc:
        typer.echo(f"imail: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    issued = run_in_session(
        settings,
        lambda s: issue_key(s, workspace, mode == "live", name=name, scopes=scopes),
        audit=("keys create", lambda i: (i.key.workspace_id, i.key.livemode, i.key.id)),
    )
    body = {"key_id": issued.key.id, "key": issued.secret, "livemode": issued.key.livemode, "scopes": scopes}
    typer.echo(json.dumps(body) if as_json else f"{issued.key.id}: {issued.secret}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key at once."""
    from imail.auth.service import revoke_key

    settings = settings_or_exit()
    key = run_in_session(
        settings,
        lambda s: revoke_key(s, key_id),
        audit=("keys revoke", lambda k: (k.workspace_id, k.livemode, k.id)),
    )
    typer.echo(f"revoked {key.id}")


@secrets_app.command("rotate")
def secrets_rotate(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Re-encrypt every stored secret (inbox credentials, webhook signing secrets, kept idempotent responses)
    under the current IMAIL_SECRET_KEY.

    Rotation: move the old key to IMAIL_SECRET_KEYS_OLD (comma-separated), set the new IMAIL_SECRET_KEY, run
    this, then drop the old key from IMAIL_SECRET_KEYS_OLD.
    """
    from imail.db import Database
    from imail.idempotency.service import rotate_responses
    from imail.inboxes.service import rotate_secrets
    from imail.webhooks.service import rotate_secrets as rotate_webhook_secrets

    settings = settings_or_exit()

    async def main() -> Any:
        database = Database(settings)
        try:
            return (
                await rotate_secrets(database, settings),
                await rotate_webhook_secrets(database, settings),
                await rotate_responses(database),
            )
        finally:
            await database.dispose()

    inboxes, webhooks, responses = asyncio.run(main())
    rotated = inboxes.rotated + webhooks.rotated + responses.rotated
    current = inboxes.current + webhooks.current + responses.current
    unreadable = [*inboxes.unreadable, *webhooks.unreadable, *responses.unreadable]
    body = {
        "inboxes": inboxes.inboxes,
        "webhooks": webhooks.rows,
        "idempotency_records": responses.rows,
        "rotated": rotated,
        "already_current": current,
        "unreadable": unreadable,
    }
    if as_json:
        typer.echo(json.dumps(body))
    else:
        typer.echo(
            f"{rotated} secret(s) re-encrypted, {current} already under the current key; scanned "
            f"{inboxes.inboxes} inbox(es), {webhooks.rows} webhook(s), {responses.rows} kept response(s)"
        )
    if unreadable:
        typer.echo(
            "imail: no configured key opens the secrets of "
            + ", ".join(unreadable)
            + " (add the key they were written with to IMAIL_SECRET_KEYS_OLD)",
            err=True,
        )
        raise typer.Exit(1)


@replies_app.command("classify")
def replies_classify(
    explain: Annotated[
        bool, typer.Option("--explain", help="Also print why: source, evidence, bounce, text")
    ] = False,
) -> None:
    """Classify one message read on stdin (RFC 822 bytes in any charset, or plain text); print JSON."""
    import structlog

    from imail.kit.logging import configure_logging
    from imail.replies.verdict import assess

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"imail: bad setting: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json)
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr)
    )  # stdout carries the JSON only
    data = sys.stdin.buffer.read()
    if not data.strip():
        typer.echo(
            "imail: nothing on stdin (pipe one message in: imail replies classify < reply.eml)", err=True
        )
        raise typer.Exit(1)
    verdict = asyncio.run(assess(data, settings))
    body = verdict.explanation() if explain else verdict.summary()
    typer.echo(json.dumps(body, ensure_ascii=False))


@replies_app.command("train")
def replies_train(
    workspace: Annotated[
        str, typer.Option(help="The workspace (ws_…) whose label corrections to learn from")
    ],
    drop: Annotated[
        bool, typer.Option("--drop", help="Delete its model instead: back to the shipped one")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fit a workspace's own reply model from the shipped corpus plus its label corrections (PATCH
    /v1/replies/{id}); its replies are classified with it from then on. Other workspaces keep the shipped
    model."""
    if drop:
        _drop_reply_model(workspace, as_json)
        return
    from imail.kit.clock import utcnow
    from imail.replies.training import train_workspace

    settings = settings_or_exit()
    trained = run_in_session(
        settings,
        lambda session: train_workspace(session, workspace, utcnow()),
        audit=("replies train", lambda t: (t.workspace_id, True, t.workspace_id)),
    )
    body = {
        "workspace_id": trained.workspace_id,
        "corrections": trained.corrections,
        "examples": trained.examples,
        "trained_at": trained.trained_at.isoformat(),
        "bytes": trained.size,
    }
    typer.echo(
        json.dumps(body)
        if as_json
        else f"trained a reply model for {workspace}: {trained.corrections} correction(s) on top of "
        f"{trained.examples - trained.corrections} shipped examples ({trained.size // 1024} KiB)"
    )


@replies_app.command("drop-model")
def replies_drop_model(
    workspace: Annotated[str, typer.Option(help="The workspace (ws_…) whose own model to delete")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete a workspace's own reply model: its replies go back to the shipped model."""
    _drop_reply_model(workspace, as_json)


def _drop_reply_model(workspace: str, as_json: bool) -> None:
    from imail.replies.training import drop_workspace_model

    dropped = run_in_session(
        settings_or_exit(),
        lambda session: drop_workspace_model(session, workspace),
        audit=("replies drop-model", lambda dropped: (workspace, True, workspace) if dropped else None),
    )
    if as_json:
        typer.echo(json.dumps({"workspace_id": workspace, "dropped": dropped}))
    else:
        typer.echo(
            f"dropped the reply model of {workspace}; the shipped model applies"
            if dropped
            else f"{workspace} had no model of its own; the shipped model applies"
        )


@analytics_app.command("rebuild")
def analytics_rebuild(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace (default: all)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute the daily rollups from the event log, in one transaction (identical to the live counts)."""
    from imail.analytics.rollups import rebuild

    result = run_in_session(settings_or_exit(), lambda session: rebuild(session, workspace))
    typer.echo(
        json.dumps(result)
        if as_json
        else f"rebuilt {result['rows']} rollup rows from {result['events']} events"
    )


# uvicorn's httptools protocol, plus a bound on requests that stall (IMAIL_REQUEST_STALL_SECONDS); by import
# string, so the processes of --processes load it too.
HTTP_PROTOCOL = "imail.kit.slow_clients:StallGuardedProtocol"


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[
        bool, typer.Option("--workers/--no-workers", help="Run the background workers in-process")
    ] = True,
    processes: Annotated[int, typer.Option(help="uvicorn worker processes (API only)")] = 1,
) -> None:
    """Serve the HTTP API (and, unless --no-workers, the background workers)."""
    import uvicorn

    settings = settings_or_exit()
    memory.limit_arenas()
    process.raise_open_files_limit()
    process.shrink_tls_read_buffers()
    if processes > 1:
        if workers:
            typer.echo("imail: --processes > 1 needs --no-workers (run `imail worker` beside it)", err=True)
            raise typer.Exit(2)
        uvicorn.run(
            "imail.asgi:app",
            host=host,
            port=port,
            workers=processes,
            log_level="warning",
            http=HTTP_PROTOCOL,
            access_log=False,
            # uvicorn annotates an int, and hands it to asyncio.wait_for, which takes a float.
            timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
        )
        return
    from imail.main import create_app, freeze_startup_heap

    api = create_app(settings, run_workers=workers)
    freeze_startup_heap()
    uvicorn.run(
        api,
        host=host,
        port=port,
        log_level="warning",
        http=HTTP_PROTOCOL,
        access_log=False,
        # uvicorn annotates an int, and hands it to asyncio.wait_for, which takes a float.
        timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
    )


@app.command("worker")
def worker() -> None:
    """Run the background workers alone (scale-out)."""
    settings = settings_or_exit()
    memory.limit_arenas()
    process.raise_open_files_limit()
    process.shrink_tls_read_buffers()
    asyncio.run(_run_workers(settings))


async def _run_workers(settings: Settings) -> None:
    import httpx

    from imail.db import Database
    from imail.main import make_redis
    from imail.workers.context import WorkerContext
    from imail.workers.runner import Supervisor, instance_id

    database = Database(settings)
    redis = make_redis(settings)
    async with httpx.AsyncClient(timeout=10.0) as http:
        supervisor = Supervisor(WorkerContext(settings, database, redis, http, instance_id()))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        supervisor.start()
        await stop.wait()
        await supervisor.stop()
    if redis is not None:
        await redis.aclose()
    await database.dispose()


@app.command("openapi")
def openapi(output: Annotated[str | None, typer.Option("--output", "-o")] = None) -> None:
    """Print (or write) the OpenAPI document."""
    from imail.main import create_app

    settings = settings_or_exit()
    document = json.dumps(create_app(settings).openapi(), indent=2, ensure_ascii=False) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(document)
    else:
        sys.stdout.write(document)


@leads_app.command("import")
def leads_import(
    file: Annotated[
        typer.FileBinaryRead, typer.Argument(help="CSV file (UTF-8), first row naming the columns")
    ],
    campaign: Annotated[str, typer.Option(help="cmp_… id of the campaign to add the leads to")],
    workspace: Annotated[str, typer.Option(help="ws_… id owning the campaign")],
    mode: Annotated[str, typer.Option(help="live or test")] = "live",
    mapping: Annotated[
        str | None, typer.Option(help='JSON, lead field → column: {"email": "Work Email"}; default: by name')
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help=", ; | or \\t; default: guessed")] = None,
    background: Annotated[
        bool, typer.Option("--background", help="queue the job for the workers and print its id, don't wait")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the finished job as JSON")] = False,
) -> None:
    """Import leads from a CSV file as a background job (the same as POST /v1/leads/import past the
    threshold), run here with a progress bar on stderr; interrupted, the job stays queued for the workers."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from imail.db import Database
    from imail.errors import ImailError
    from imail.jobs import service as jobs
    from imail.kit.clock import utcnow
    from imail.kit.ids import new_id
    from imail.kit.tenancy import Tenant
    from imail.leads import import_job
    from imail.workers.jobs import HANDLERS

    if mode not in ("live", "test"):
        typer.echo("imail: --mode must be live or test", err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()
    tenant = Tenant(workspace, mode == "live")

    async def main() -> dict[str, Any]:
        database = Database(settings)
        try:
            async with database.transaction() as session:
                job = await import_job.start(
                    session, tenant, campaign, file, mapping, delimiter, settings.jobs_chunk_rows
                )
                job_id, total = job.id, job.total
            if background:
                return {"id": job_id, "status": "queued", "progress": {"done": 0, "total": total}}
            console = Console(stderr=True)
            token = f"cli:{new_id('req')[-8:]}"

            def run(on_progress: Callable[[int, int], None]) -> Awaitable[int]:
                return jobs.run_next(
                    database, settings, HANDLERS, token, utcnow, asyncio.Event(), job_id, on_progress
                )

            if console.is_terminal:
                columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
                with Progress(*columns, console=console) as bar:
                    task = bar.add_task("import", total=total)
                    await run(lambda done, _total: bar.update(task, completed=done))
            else:  # a log, not a screen: a line at every tenth of the way
                shown = [-1]

                def line(done: int, of: int) -> None:
                    if done * 10 // max(of, 1) > shown[0]:
                        shown[0] = done * 10 // max(of, 1)
                        typer.echo(f"importing: {done}/{of} rows", err=True)

                await run(line)
            async with database.read() as session:
                return jobs.view(await jobs.get_job(session, tenant, job_id))
        finally:
            await database.dispose()

    try:
        job = asyncio.run(main())
    except ImailError as exc:
        typer.echo(f"imail: {exc.message}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(job, default=str))
        return
    if background:
        typer.echo(f"{job['id']}: queued, {job['progress']['total']} rows")
        return
    result = job["result"]
    typer.echo(
        f"{job['id']}: {job['status']}, {job['progress']['done']}/{job['progress']['total']} rows: "
        f"{result.get('created', 0)} created, {result.get('duplicates', 0)} duplicates, "
        f"{result.get('suppressed', 0)} suppressed, {result.get('invalid', 0)} invalid"
    )
    for error in job["errors"][:20]:
        typer.echo(f"  line {error.get('line')}: {error['code']}: {error['message']}", err=True)
    if job["error_count"] > 20:
        typer.echo(f"  … {job['error_count'] - 20} more rows not created", err=True)
    if job["status"] != "succeeded":
        if job["failure"]:
            typer.echo(f"imail: {job['failure']}", err=True)
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
