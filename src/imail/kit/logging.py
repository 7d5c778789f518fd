"""structlog set-up: fixed event messages with keyword fields, console or JSON lines."""

from __future__ import annotations

import logging

import structlog


def configure_logging(level: str = "INFO", json_lines: bool = False) -> None:
    logging.basicConfig(format="%(message)s", level=level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    renderer = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
