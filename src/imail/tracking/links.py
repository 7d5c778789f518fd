"""Rewriting a rendered email for tracking: links through the click redirect, an open pixel at the end."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

_ANCHOR_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def rewrite_links(markup: str, tracked_url: Callable[[int], str]) -> tuple[str, list[str]]:
    """Replace each http(s) link with `tracked_url(index)`; return the new HTML and the original links in
    order. The click redirect later resolves an index only against this list, so it can never become an open
    redirect."""
    links: list[str] = []

    def replace(match: re.Match) -> str:
        prefix, quote, href = match.group(1), match.group(2), match.group(3)
        target = html.unescape(href.strip())
        if not target.lower().startswith(("http://", "https://")):
            return match.group(0)
        links.append(target)
        return f"{prefix}{quote}{html.escape(tracked_url(len(links) - 1), quote=True)}{quote}"

    return _ANCHOR_HREF.sub(replace, markup), links


def add_pixel(markup: str, pixel_url: str) -> str:
    """The open pixel as the CSS background of an empty 1×1 block, not an `<img>`: spam filters score a short
    email that holds an image as image-only (SpamAssassin's HTML_IMAGE_ONLY_* rules fire on any `<img>` with
    under 2,800 bytes of text). Most clients that show remote images load CSS backgrounds as well; classic
    Outlook for Windows does not."""
    url = html.escape(pixel_url.replace("'", "%27"), quote=False).replace('"', "&quot;")
    pixel = (
        f"<div style=\"background-image:url('{url}');width:1px;height:1px;font-size:1px;line-height:1px\">"
        "</div>"
    )
    closing = re.search(r"</body\s*>", markup, re.IGNORECASE)
    if closing:
        return markup[: closing.start()] + pixel + markup[closing.start() :]
    return markup + pixel
