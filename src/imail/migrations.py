"""Running Alembic from code (`imail db upgrade`, tests)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from imail.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str, settings: Settings | None = None) -> Config:
    script_location = REPO_ROOT / "alembic"
    if not script_location.is_dir():
        script_location = Path.cwd() / "alembic"
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    # A migration that encrypts existing data reads the server's key from here (see 0012).
    config.attributes["imail.settings"] = settings
    return config


def upgrade(database_url: str, revision: str = "heads", settings: Settings | None = None) -> None:
    command.upgrade(alembic_config(database_url, settings), revision)
