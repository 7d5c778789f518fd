"""Human API docs at /docs, with Swagger UI's assets served from the swagger-ui-bundle package (no CDN)."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from imail.kit import pages

ASSETS = "/docs/assets"


def swagger_page() -> HTMLResponse:
    """Swagger UI, allowed to run its own bundle and the one inline script that starts it (by hash), to fetch
    /openapi.json and to draw its data: icons; nothing else, and it cannot be framed."""
    response = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="imail v1 API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )
    inline = re.findall(r"<script>(.*?)</script>", bytes(response.body).decode(), re.DOTALL)
    policy = pages.policy(
        scripts=inline,
        script_src="'self'",
        style_src="'self'",
        img_src="'self' data:",
        connect_src="'self'",
        font_src="'self' data:",
    )
    response.headers.update({**pages.HTML_HEADERS, "Content-Security-Policy": policy})
    return response


def mount_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    page = swagger_page()  # the same document every time: built (and its script hashed) once
    body, headers = (
        bytes(page.body),
        {k: v for k, v in page.headers.items() if k not in ("content-length", "content-type")},
    )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui():
        return HTMLResponse(body, headers=headers)
