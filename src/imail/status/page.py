"""The public status page at `/status`: server-rendered HTML, no external assets (inline CSS and SVG), drawn
from the same cached figures as `/v1/metrics/public` and `/v1/status/full`."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from imail.analytics.public import PUBLIC_CACHE, PublicMetrics, metrics_cache
from imail.kit import pages
from imail.status.router import status_cache
from imail.status.schemas import StatusFull

router = APIRouter(include_in_schema=False)

COLORS = {"ok": "#1a7f37", "degraded": "#9a6700", "down": "#cf222e", "disabled": "#6e7781"}
# One fixed stylesheet (a state is a class, never an inline style), so the page's CSP allows it by its hash.
STYLE = (
    'body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:760px;margin:2rem '
    "auto;padding:0 1rem;"
    "color:#1f2328}\nh1{font-size:1.5rem} .badge{display:inline-block;padding:.15rem "
    ".6rem;border-radius:1rem;color:#fff}\n"
    "table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem} td,th{text-align:left;padding:.3rem "
    ".5rem;"
    "border-bottom:1px solid #d0d7de}\n.figures{display:flex;gap:1rem;flex-wrap:wrap} "
    ".figure{flex:1;min-width:140px;"
    "border:1px solid #d0d7de;border-radius:6px;padding:.6rem}\n.figure b{display:block;font-size:1.4rem} "
    ".muted{color:#6e7781;font-size:.85rem}\n"
    + "".join(
        f".s.{name}{{color:{color}}} .badge.{name}{{background:{color}}}\n" for name, color in COLORS.items()
    )
)
PAGE_POLICY = pages.policy(styles=[STYLE])


def sparkline(values: list[int], width: int = 480, height: int = 60) -> str:
    """An inline SVG polyline of `values` (sends per hour), with a title for screen readers."""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 4 - (v / top) * (height - 8):.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg id="sparkline" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Emails sent per hour, last 24 hours: '
        f"{escape(', '.join(map(str, values)))}</title>"
        f'<polyline fill="none" stroke="#0969da" stroke-width="2" points="{points}"/></svg>'
    )


def render(status: StatusFull, metrics: PublicMetrics) -> str:
    rows = "".join(
        f'<tr><td>{escape(name)}</td><td class="s {c.status}">{escape(c.status)}</td>'
        f"<td>{escape(c.detail or '')}</td></tr>"
        for name, c in status.components.items()
    )
    ops = status.operations
    op_rows = (
        ""
        if ops is None
        else (
            f"<tr><td>Workers alive</td><td>{ops.workers_alive}</td></tr>"
            f"<tr><td>Sending lag</td><td>{ops.sending_lag_seconds:g} s</td></tr>"
            f"<tr><td>Webhook backlog</td><td>{ops.webhook_backlog}</td></tr>"
            f"<tr><td>IMAP readers connected</td><td>{ops.imap_readers_connected}</td></tr>"
        )
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, \
initial-scale=1">
<title>imail status: {escape(status.status)}</title>
<style>{STYLE}</style></head><body>
<h1>imail status <span class="badge {status.status}" id="overall">{escape(status.status)}</span></h1>
<div class="figures">
<div class="figure"><b id="sent-today">{metrics.emails_sent_today}</b>emails sent today (UTC)</div>
<div class="figure"><b id="replies-today">{metrics.replies_today}</b>replies today</div>
<div class="figure"><b id="active-inboxes">{metrics.active_inboxes}</b>active inboxes</div>
<div class="figure"><b id="reply-rate">{metrics.reply_rate_7d * 100:.1f}%</b>reply rate, 7 days</div>
</div>
<h2>Sends per hour, last 24 hours</h2>
{sparkline(metrics.sends_per_hour)}
<h2>Components</h2><table>{rows}</table>
<h2>Operations</h2><table>{op_rows}</table>
<p class="muted">Version {escape(status.version)}; checked {status.checked_at:%Y-%m-%d %H:%M:%S} UTC; \
figures refresh every 30 s.</p>
</body></html>"""


@router.get("/status", response_class=HTMLResponse)
async def status_page(request: Request):
    html = render(await status_cache(request).get(), await metrics_cache(request).get())
    return HTMLResponse(
        html,
        headers={**pages.HTML_HEADERS, "Content-Security-Policy": PAGE_POLICY, "Cache-Control": PUBLIC_CACHE},
    )
