"""Settings: bad values stop start-up with one line naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imail.config import SettingsError, load_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAIL_DATABASE_URL", "mysql://nope"),
        ("IMAIL_REDIS_URL", "http://localhost"),
        ("IMAIL_DATABASE_POOL_SIZE", "many"),
        ("IMAIL_SECRET_KEY", "short"),
        ("IMAIL_LOG_LEVEL", "LOUD"),
        ("IMAIL_MAIL_CA_FILE", "/nonexistent/ca.pem"),
        ("IMAIL_MAIL_CA_FILE", __file__),  # a file, but no certificate in it
    ],
)
def test_bad_values_name_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message


def test_postgres_needs_an_explicit_secret_key(monkeypatch):
    monkeypatch.setenv("IMAIL_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/x")
    monkeypatch.delenv("IMAIL_SECRET_KEY", raising=False)
    with pytest.raises(SettingsError, match="IMAIL_SECRET_KEY"):
        load_settings().resolved_secret_key()


def test_embedded_default_creates_and_keeps_a_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("IMAIL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/imail.db")
    monkeypatch.delenv("IMAIL_SECRET_KEY", raising=False)
    first = load_settings().resolved_secret_key()
    assert len(first) >= 32
    assert load_settings().resolved_secret_key() == first
    assert (tmp_path / "imail.db.secret").stat().st_mode & 0o077 == 0


def test_the_cli_stops_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "imail.cli", "db", "upgrade"],
        env={"IMAIL_DATABASE_URL": "mysql://x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "imail: bad setting: IMAIL_DATABASE_URL: must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
    ]
