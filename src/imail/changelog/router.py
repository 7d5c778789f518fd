"""`GET /changelog` (HTML, public) and `GET /v1/changelog` (the same as data), both read from the snapshot
registry, so neither can disagree with what the server does."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from starlette.responses import HTMLResponse

from imail.changelog.schemas import Changelog, ChangelogDeprecation, ChangelogEntry
from imail.kit import versions

router = APIRouter(tags=["Changelog"])
page_router = APIRouter(include_in_schema=False)


def changelog() -> Changelog:
    return Changelog(
        latest=versions.LATEST,
        data=[
            ChangelogEntry(
                version=change.date,
                description=change.description,
                endpoints_added=sorted(f"{method} {path}" for method, path in change.endpoints),
                events_added=sorted(change.events),
                deprecations=[
                    ChangelogDeprecation(kind=d.kind, target=d.target, sunset=d.sunset, note=d.note)
                    for d in change.deprecations
                ],
            )
            for change in reversed(versions.CHANGES)
        ],
    )


@router.get("/changelog", response_model=Changelog)
async def get_changelog() -> Changelog:
    """The API changelog as data: each `Imail-Version` snapshot, what it added and what it deprecated.
    Public."""
    return changelog()


def render(log: Changelog) -> str:
    sections = []
    for entry in log.data:
        items = [f"<li>New endpoint <code>{escape(e)}</code></li>" for e in entry.endpoints_added]
        items += [f"<li>New webhook event <code>{escape(e)}</code></li>" for e in entry.events_added]
        items += [
            f'<li class="deprecated">Deprecated: <code>{escape(d.target)}</code> ({escape(d.kind)}), stops '
            "working on "
            f"<time>{d.sunset.isoformat()}</time>. {escape(d.note)}</li>"
            for d in entry.deprecations
        ]
        listing = f"<ul>{''.join(items)}</ul>" if items else ""
        version = entry.version.isoformat()
        latest = " (latest)" if entry.version == log.latest else ""
        sections.append(
            f'<section id="{version}"><h2><a href="#{version}">{version}</a>{latest}</h2>'
            f"<p>{escape(entry.description)}</p>{listing}</section>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, \
initial-scale=1">
<title>imail changelog</title>
<style>
body{{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:760px;margin:2rem auto;padding:0 \
1rem;color:#1f2328}}
h2{{font-size:1.15rem;margin-top:2rem}} h2 a{{color:inherit;text-decoration:none}} \
code{{background:#f6f8fa;padding:0 .2rem}}
.deprecated{{color:#9a6700}}
</style></head><body>
<h1>imail changelog</h1>
<p>Each entry is an API snapshot: pin it with the <code>Imail-Version</code> header (a date; the newest
snapshot on or before it answers). Within v1 nothing is removed without a deprecation of at least 12 months,
announced here, in the <code>Deprecation</code> and <code>Sunset</code> headers of responses that use it, and
by email from six months before it goes. The same list as data:
<a href="/v1/changelog"><code>GET /v1/changelog</code></a>.</p>
{"".join(sections)}
</body></html>"""


@page_router.get("/changelog", response_class=HTMLResponse)
async def changelog_page() -> HTMLResponse:
    return HTMLResponse(render(changelog()))
