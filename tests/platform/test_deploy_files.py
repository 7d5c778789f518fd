"""The Dockerfile and docker-compose.yml keep the shape operators rely on (no Docker engine runs here)."""

from __future__ import annotations

import re

import pytest

yaml = pytest.importorskip("yaml")

IMAIL_ENV = {"IMAIL_DATABASE_URL", "IMAIL_REDIS_URL", "IMAIL_SECRET_KEY", "IMAIL_PUBLIC_URL"}


@pytest.fixture(scope="module")
def compose(repo_root) -> dict:
    return yaml.safe_load((repo_root / "docker-compose.yml").read_text())


def test_compose_runs_the_production_shape(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["api"]["command"][:2] == ["serve", "--no-workers"]
    assert "0.0.0.0" in services["api"]["command"]
    assert services["worker"]["command"] == ["worker"]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2


def test_imail_services_get_their_settings_and_wait_for_the_migration(compose):
    services = compose["services"]
    for name in ("migrate", "api", "worker"):
        env = services[name]["environment"]
        assert IMAIL_ENV <= set(env), name
        assert env["IMAIL_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["IMAIL_REDIS_URL"].startswith("redis://redis:")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_healthchecks_probe_healthz_and_pg_isready(compose):
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]


def test_dockerfile_is_slim_non_root_and_runs_imail(repo_root):
    text = (repo_root / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"pip install (--no-deps )?-e \.", text)
    assert re.search(r'^ENTRYPOINT \["imail"\]', text, re.MULTILINE)
    assert "/app" in text
