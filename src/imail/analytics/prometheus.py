"""Prometheus metrics at `/metrics` (text exposition format 0.0.4), guarded by IMAIL_METRICS_TOKEN.

Per process: HTTP requests by method, route template and status, and their latency histogram by route. From
the database (at scrape time, one small query each): live emails sent / hard and soft bounces (all time, from
the rollups), due sends (queue depth) and sending lag, webhook backlog, workers alive, IMAP readers
connected."""

from __future__ import annotations

import hmac
import time
from collections import defaultdict
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imail.analytics.public import operations
from imail.analytics.repository import PlatformRepository
from imail.errors import NotFound, Unauthorized
from imail.kit.clock import utcnow

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, str(status))] += 1
        counts = self.buckets[route]
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.sums[route] += seconds


class MetricsMiddleware:
    """Times every HTTP request; the route is the matched template (`/v1/campaigns/{campaign_id}`), never the
    raw path, so ids do not explode the label set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = HttpMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        application = scope.get("app")
        if application is not None and getattr(application.state, "http_metrics", None) is not self.metrics:
            application.state.http_metrics = self.metrics
        started = time.perf_counter()
        status = 500
        outer_root = scope.get("root_path", "")  # the deployment's prefix, not part of a route

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope, outer_root)
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)


def route_template(scope: Scope, outer_root: str = "") -> str:
    """`/v1/campaigns/{campaign_id}` for `/v1/campaigns/cmp_01…`: each path segment equal to a path
    parameter's value is replaced by the parameter's name; a request no route matched is `unmatched`."""
    if scope.get("endpoint") is None:
        return "unmatched"
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    path = scope.get("path", "")
    if outer_root and path.startswith(outer_root):
        path = path[len(outer_root) :]
    return "/".join(
        f"{{{params[unquote(seg)]}}}" if unquote(seg) in params else seg for seg in path.split("/")
    )


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(http: HttpMetrics | None, figures: dict[str, Any]) -> str:
    lines = [
        "# HELP imail_http_requests_total HTTP requests by method, route template and status (this process).",
        "# TYPE imail_http_requests_total counter",
    ]
    if http is not None:
        for (method, route, status), n in sorted(http.requests.items()):
            lines.append(
                f'imail_http_requests_total{{method="{method}",route="{_label(route)}",status="{status}"}} '
                f"{n}"
            )
        lines += [
            "# HELP imail_http_request_duration_seconds HTTP request latency by route template (this "
            "process).",
            "# TYPE imail_http_request_duration_seconds histogram",
        ]
        for route, counts in sorted(http.buckets.items()):
            r = _label(route)
            for bound, n in zip((*[str(b) for b in BUCKETS], "+Inf"), counts, strict=True):
                lines.append(f'imail_http_request_duration_seconds_bucket{{route="{r}",le="{bound}"}} {n}')
            lines.append(f'imail_http_request_duration_seconds_sum{{route="{r}"}} {http.sums[route]:.6f}')
            lines.append(f'imail_http_request_duration_seconds_count{{route="{r}"}} {counts[-1]}')
    for name, kind, help_text, value in (
        ("imail_emails_sent_total", "counter", "Emails sent (live ledger, all workspaces).", figures["sent"]),
        ('imail_bounces_total{kind="hard"}', "counter", "Bounces (live ledger).", figures["bounced_hard"]),
        ('imail_bounces_total{kind="soft"}', "counter", None, figures["bounced_soft"]),
        (
            'imail_queue_depth{queue="sending_due"}',
            "gauge",
            "Items due and not yet processed.",
            figures["sending_due"],
        ),
        ('imail_queue_depth{queue="webhooks_due"}', "gauge", None, figures["webhook_backlog"]),
        ("imail_webhook_backlog", "gauge", "Webhook deliveries due now.", figures["webhook_backlog"]),
        (
            "imail_sending_lag_seconds",
            "gauge",
            "How late the oldest due send is.",
            figures["sending_lag_seconds"],
        ),
        (
            "imail_workers_alive",
            "gauge",
            "Worker processes seen by heartbeat in the last 30 s.",
            figures["workers_alive"],
        ),
        (
            "imail_imap_readers_connected",
            "gauge",
            "Mailboxes held by an IMAP reader.",
            figures["imap_readers_connected"],
        ),
    ):
        base = name.split("{")[0]
        if help_text is not None:
            lines += [f"# HELP {base} {help_text}", f"# TYPE {base} {kind}"]
        lines.append(f"{name} {value}")
    return "\n".join(lines) + "\n"


async def database_figures(database: Any) -> dict[str, Any]:
    now = utcnow()
    ops = await operations(database, now)
    async with database.transaction() as session:
        platform = PlatformRepository(session)
        sent, hard, soft = await platform.live_sent_and_bounced()
        due = await platform.due_sends(now)
    return {
        "sent": sent,
        "bounced_hard": hard,
        "bounced_soft": soft,
        "sending_due": due,
        **ops.model_dump(),
    }


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def prometheus_metrics(request: Request):
    token = request.app.state.settings.metrics_token
    if not token:
        raise NotFound("Prometheus metrics are off: set IMAIL_METRICS_TOKEN to enable /metrics")
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Unauthorized("Send the metrics token as `Authorization: Bearer <IMAIL_METRICS_TOKEN>`")
    figures = await database_figures(request.app.state.database)
    http = getattr(request.app.state, "http_metrics", None)
    return Response(render(http, figures), media_type="text/plain; version=0.0.4; charset=utf-8")
