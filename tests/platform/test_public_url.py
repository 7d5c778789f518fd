"""IMAIL_PUBLIC_URL must be https (RFC 8058 one-click unsubscribe) except on loopback, unless the operator
accepts http with IMAIL_ALLOW_HTTP_PUBLIC_URL=1, which GET /v1/status/full then warns about."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from imail.config import SettingsError, load_settings
from imail.main import create_app
from tests.conftest import make_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env file
    for name in ("IMAIL_PUBLIC_URL", "IMAIL_ALLOW_HTTP_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "url", ["http://t.acme.io", "http://203.0.113.7:8000", "ftp://t.acme.io", "t.acme.io"]
)
def test_http_or_no_scheme_off_loopback_stops_start_up_in_one_line(env, url):
    env.setenv("IMAIL_PUBLIC_URL", url)
    with pytest.raises(SettingsError) as failure:
        load_settings()
    message = str(failure.value)
    assert message.startswith("IMAIL_PUBLIC_URL: ") and "\n" not in message and "https" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://t.acme.io",
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
        "http://127.0.0.2",
    ],
)
def test_https_and_loopback_http_are_accepted(env, url):
    env.setenv("IMAIL_PUBLIC_URL", url)
    settings = load_settings()
    assert settings.public_url == url and settings.public_url_warnings() == []


def test_the_command_line_refuses_to_start_with_one_line(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "IMAIL_PUBLIC_URL": "http://t.acme.io",
        "IMAIL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db",
    }
    done = subprocess.run(
        [sys.executable, "-m", "imail.cli", "serve"],
        env={**env, "PYTHONPATH": ":".join(sys.path)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip().count("\n") == 0 and "IMAIL_PUBLIC_URL: http://t.acme.io is http" in done.stderr
    )


async def test_http_allowed_explicitly_is_warned_about_in_the_status(env, database_url):
    env.setenv("IMAIL_PUBLIC_URL", "http://t.acme.io")
    env.setenv("IMAIL_ALLOW_HTTP_PUBLIC_URL", "1")
    loaded = load_settings()
    assert loaded.allow_http_public_url and loaded.public_url == "http://t.acme.io"

    settings = make_settings(database_url, public_url="http://t.acme.io", allow_http_public_url=True)
    app = create_app(settings, run_workers=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        warnings = (await client.get("/v1/status/full")).json()["warnings"]
    assert (
        len(warnings) == 1
        and "IMAIL_PUBLIC_URL" in warnings[0]
        and "IMAIL_ALLOW_HTTP_PUBLIC_URL" in warnings[0]
    )


async def test_a_loopback_public_url_has_no_warning(client):
    assert (await client.get("/v1/status/full")).json()["warnings"] == []
