"""The operator's commands of the contract, run as a user would (subprocesses on a fresh database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def imail(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imail.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")}
    env["IMAIL_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    return env


def test_upgrade_create_rotate_revoke(cli_env, tmp_path):
    assert imail("db", "upgrade", env=cli_env, cwd=tmp_path).returncode == 0

    created = imail(
        "workspaces", "create", "Acme Outbound", "--tier", "velocity", "--json", env=cli_env, cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert set(body) == {"workspace_id", "live_key", "test_key"}
    assert body["workspace_id"].startswith("ws_")
    assert body["live_key"].startswith("imk_live_") and body["test_key"].startswith("imk_test_")

    issued = imail(
        "keys",
        "create",
        "--workspace",
        body["workspace_id"],
        "--mode",
        "test",
        "--scope",
        "analytics:read",
        "--json",
        env=cli_env,
        cwd=tmp_path,
    )
    assert issued.returncode == 0, issued.stderr
    key = json.loads(issued.stdout)
    assert key["key"].startswith("imk_test_") and key["scopes"] == ["analytics:read"]

    revoked = imail("keys", "revoke", key["key_id"], env=cli_env, cwd=tmp_path)
    assert revoked.returncode == 0 and key["key_id"] in revoked.stdout


def test_bad_input_exits_non_zero_with_a_message(cli_env, tmp_path):
    imail("db", "upgrade", env=cli_env, cwd=tmp_path)
    bad_tier = imail("workspaces", "create", "X", "--tier", "gold", "--json", env=cli_env, cwd=tmp_path)
    assert bad_tier.returncode == 1 and "tier must be one of" in bad_tier.stderr
    unknown = imail("keys", "create", "--workspace", "ws_nope", env=cli_env, cwd=tmp_path)
    assert unknown.returncode == 1 and "No workspace" in unknown.stderr
    bad_mode = imail("keys", "create", "--workspace", "ws_x", "--mode", "prod", env=cli_env, cwd=tmp_path)
    assert bad_mode.returncode == 2
    bad_scope = imail("keys", "create", "--workspace", "ws_x", "--scope", "all", env=cli_env, cwd=tmp_path)
    assert bad_scope.returncode == 2 and "unknown scope" in bad_scope.stderr
    assert imail("keys", "revoke", "key_nope", env=cli_env, cwd=tmp_path).returncode == 1


def test_demo_workspace_is_created_once(cli_env, tmp_path):
    imail("db", "upgrade", env=cli_env, cwd=tmp_path)
    first = json.loads(imail("demo", "--json", env=cli_env, cwd=tmp_path).stdout)
    second = json.loads(imail("demo", "--json", env=cli_env, cwd=tmp_path).stdout)
    assert first["workspace_id"] == second["workspace_id"]
    assert first["live_key"] != second["live_key"]
