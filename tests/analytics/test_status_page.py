"""The public `/status` page: server-rendered, self-contained, drawn from the cached figures; rendered in
headless Chromium (Debian's `chromium`) with a screenshot kept as a test artefact."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from imail.events.service import record_event
from imail.kit.ids import new_id
from imail.kit.tenancy import Tenant
from tests.fixtures.outreach import make_inbox

ARTIFACTS = Path(os.environ.get("IMAIL_TEST_ARTIFACTS", "/tmp/imail-test-artifacts"))


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("IMAIL_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (run .ci/packages)")
        pytest.skip("chromium is not installed (run .ci/packages)")
    return found


async def _page(client, database, workspace) -> str:
    await make_inbox(database, workspace.workspace_id)
    async with database.transaction() as session:
        for _ in range(7):
            await record_event(
                session, Tenant(workspace.workspace_id, True), "email.sent", {"message_id": new_id("msg")}
            )
    response = await client.get("/status")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "public, max-age=30"
    return response.text


async def test_status_page_is_self_contained_and_shows_the_figures(client, database, workspace):
    html = await _page(client, database, workspace)
    assert re.search(r'id="sent-today">7<', html) and re.search(r'id="active-inboxes">1<', html)
    assert re.search(r'id="overall">ok<', html)
    # no external assets: nothing to fetch, no scripts
    assert not re.search(r"""(src|href)\s*=|url\(|@import|<script|<link""", html, re.IGNORECASE)
    spark = re.search(r"<title>Emails sent per hour, last 24 hours: ([\d, ]+)</title>", html)
    assert spark is not None and spark.group(1).split(", ")[-1] == "7"
    assert len(spark.group(1).split(", ")) == 24


async def test_status_page_renders_in_headless_chromium(client, database, workspace, tmp_path):
    binary = chromium()
    html = await _page(client, database, workspace)
    page = tmp_path / "status.html"
    page.write_text(html)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    shot.unlink(missing_ok=True)
    common = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=900,1000",
    ]
    dom = await asyncio.to_thread(
        subprocess.run,
        [*common, "--dump-dom", page.as_uri()],
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert 'id="sent-today">7<' in dom.stdout, dom.stderr[-2000:]
    assert "<polyline" in dom.stdout
    done = await asyncio.to_thread(
        subprocess.run,
        [*common, f"--screenshot={shot}", page.as_uri()],
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000  # a real picture, not a blank stub
