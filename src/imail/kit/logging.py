"""structlog set-up: fixed event messages with keyword fields, console or JSON lines."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

# PostgreSQL explains a constraint violation by quoting the row ("DETAIL:  Key (value)=(jane@example.com)
# already exists."), and the driver's exception carries it into every traceback. Logs get no personal data nor
# secret: the statement's bound parameters are already hidden by the engine (db.make_engine), and this line
# goes too.
_DATABASE_DETAIL = re.compile(r"^(DETAIL:\s*).*$", re.MULTILINE)


def hide_database_details(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    exception = event_dict.get("exception")
    if isinstance(exception, str) and "DETAIL:" in exception:
        event_dict["exception"] = _DATABASE_DETAIL.sub(
            r"\1(hidden: it may quote the row's values)", exception
        )
    return event_dict


def configure_logging(level: str = "INFO", json_lines: bool = False) -> None:
    logging.basicConfig(format="%(message)s", level=level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    renderer = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            hide_database_details,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
