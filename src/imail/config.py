"""Settings from IMAIL_* environment variables (and a .env file)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_DATABASE_URL = "sqlite+aiosqlite:///./imail.db"


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMAIL_", env_file=".env", extra="ignore")

    # database
    database_url: str = EMBEDDED_DATABASE_URL
    database_pool_size: int = Field(10, ge=1, le=200)
    database_timeout: float = Field(5.0, gt=0, description="seconds to wait for a connection")

    # redis (unset: in-process rate limiter and caches, single process only)
    redis_url: str | None = None

    # security
    secret_key: str | None = Field(None, min_length=32)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)

    # public URLs (tracking, unsubscribe, docs links in errors)
    public_url: str = "http://127.0.0.1:8000"
    docs_url: str = "https://api.imail.now/docs/errors"

    # webhooks
    webhooks_allow_private: bool = False

    # workers
    worker_poll_interval: float = Field(1.0, gt=0)
    idempotency_ttl_hours: int = Field(24, ge=1)

    # logging
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The embedded database's file, or None for PostgreSQL or an in-memory SQLite."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1]
        return None if path in ("", ":memory:") else Path(path)

    def resolved_secret_key(self) -> str:
        """IMAIL_SECRET_KEY, or for the embedded default a key created once and kept beside the database."""
        if self.secret_key:
            return self.secret_key
        db_path = self.sqlite_path()
        if db_path is None:
            raise SettingsError("IMAIL_SECRET_KEY: must be set (at least 32 characters) outside the embedded default")
        key_file = db_path.with_name(db_path.name + ".secret")
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


def load_settings() -> Settings:
    """Build Settings, turning a validation failure into one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "IMAIL_" + str(first["loc"][0]).upper() if first["loc"] else "IMAIL_*"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{name}: {message}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
