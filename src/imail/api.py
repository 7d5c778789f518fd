"""The one place routers are mounted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from imail.analytics.prometheus import MetricsMiddleware
from imail.analytics.prometheus import router as prometheus_router
from imail.analytics.public import router as public_metrics_router
from imail.analytics.router import router as analytics_router
from imail.apikeys.router import router as keys_router
from imail.audit.recording import capture_results, record_changes
from imail.audit.router import router as audit_router
from imail.campaigns.router import preview_router as campaign_preview_router
from imail.campaigns.router import router as campaigns_router
from imail.changelog.router import page_router as changelog_page_router
from imail.changelog.router import router as changelog_router
from imail.deprecations.usage import track_deprecations
from imail.errors import ErrorBody
from imail.inboxes.router import oauth_router as inbox_oauth_router
from imail.inboxes.router import router as inboxes_router
from imail.jobs.router import router as jobs_router
from imail.kit import versions
from imail.kit.version_gate import version_gate
from imail.leads.router import router as leads_router
from imail.replies.router import router as replies_router
from imail.sending.router import campaign_messages_router, lead_messages_router
from imail.status.page import router as status_page_router
from imail.status.router import health_router
from imail.status.router import router as status_router
from imail.suppressions.router import router as suppressions_router
from imail.tracking.router import router as tracking_router
from imail.tracking_domains.router import router as tls_ask_router
from imail.webhooks.docs import document_webhooks
from imail.webhooks.router import router as webhooks_router
from imail.workspaces.router import router as workspace_router

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request or validation failed",
        401: "Missing or invalid API key",
        403: "Key valid but the workspace's tier or the key's scopes lack the feature",
        404: "Resource doesn't exist or isn't yours",
        409: "Conflict",
        429: "Rate limited; see Retry-After",
        500: "Our fault; send the request_id to support",
        503: "A backing service is unavailable; retry",
    }.items()
}
PUBLIC_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {s: ERROR_RESPONSES[s] for s in (400, 500, 503)}


def build_v1() -> APIRouter:
    # Deprecation tracking costs a dependency per request: only while some snapshot deprecates something.
    tracking = [Depends(track_deprecations)] if versions.DEPRECATIONS else []
    # record_changes: every successful change through /v1 lands in the workspace's audit log (imail.audit).
    v1 = APIRouter(
        prefix="/v1",
        dependencies=[Depends(version_gate), *tracking, Depends(record_changes, scope="function")],
    )
    for router, responses in (
        (keys_router, ERROR_RESPONSES),
        (workspace_router, ERROR_RESPONSES),
        (campaigns_router, ERROR_RESPONSES),
        (campaign_preview_router, ERROR_RESPONSES),
        (leads_router, ERROR_RESPONSES),
        (jobs_router, ERROR_RESPONSES),
        (campaign_messages_router, ERROR_RESPONSES),
        (lead_messages_router, ERROR_RESPONSES),
        (replies_router, ERROR_RESPONSES),
        (suppressions_router, ERROR_RESPONSES),
        (inboxes_router, ERROR_RESPONSES),
        (status_router, PUBLIC_ERROR_RESPONSES),
        (webhooks_router, ERROR_RESPONSES),
        (analytics_router, ERROR_RESPONSES),
        (public_metrics_router, PUBLIC_ERROR_RESPONSES),
        (changelog_router, PUBLIC_ERROR_RESPONSES),
        (audit_router, ERROR_RESPONSES),
    ):
        capture_results(router)
        v1.include_router(router, responses=responses)
    return v1


def mount_routers(app: FastAPI) -> None:
    app.include_router(health_router)
    app.include_router(prometheus_router)  # /metrics, token-guarded (IMAIL_METRICS_TOKEN)
    app.include_router(status_page_router)  # /status, public HTML
    app.include_router(changelog_page_router)  # /changelog, public HTML
    app.add_middleware(MetricsMiddleware)  # request counts and latencies by route template
    app.include_router(inbox_oauth_router, responses=PUBLIC_ERROR_RESPONSES)  # /oauth/callback, outside /v1
    app.include_router(tracking_router)  # /t/… and /u/…: signed tokens, outside /v1
    app.include_router(tls_ask_router)  # /tls/ask: which hosts a proxy may get certificates for
    app.include_router(build_v1())
    document_webhooks(app)  # the OpenAPI `webhooks` section: the deliveries imail sends
