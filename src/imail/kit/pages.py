"""HTML pages and their Content-Security-Policy: nothing loads but what the page names, no page can be framed,
forms post only back to us. A page's own inline `<style>` / `<script>` is allowed by its hash, computed from
the text the code wrote (never from a rendered page, where an injection would be hashed too)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping

from starlette.responses import HTMLResponse

# Every HTML response gets these (the request-context middleware adds them to a page that set none); a page
# that needs more than nothing at all (styles, scripts) sends its own policy built by `policy`.
BASE_POLICY = "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
HTML_HEADERS = {
    "Content-Security-Policy": BASE_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors' older spelling, for browsers that predate it
    "Referrer-Policy": "no-referrer",
}


def source_hash(text: str) -> str:
    """A CSP source for one inline block: `'sha256-…'` of its exact text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def policy(styles: Iterable[str] = (), scripts: Iterable[str] = (), **directives: str) -> str:
    """BASE_POLICY plus style-src / script-src for these inline blocks, and any other directive
    (`img_src="'self' data:"` is `img-src 'self' data:`)."""
    parts = [BASE_POLICY]
    extra = {name.replace("_", "-"): value for name, value in directives.items()}
    for name, blocks in (("style-src", styles), ("script-src", scripts)):
        sources = " ".join(filter(None, [extra.pop(name, ""), *(source_hash(b) for b in blocks)]))
        if sources:
            parts.append(f"{name} {sources}")
    parts.extend(f"{name} {value}" for name, value in extra.items())
    return "; ".join(parts)


def page(
    title_html: str, body_html: str, style: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """A small self-contained page: its one inline style block allowed by hash, nothing else loadable."""
    document = (
        f"<!doctype html><html><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{title_html}</title><style>{style}</style></head><body>{body_html}</body></html>"
    )
    return HTMLResponse(
        document,
        status_code=status,
        headers={**HTML_HEADERS, **(headers or {}), "Content-Security-Policy": policy(styles=[style])},
    )
