"""CSV exports: rows rendered batch by batch (constant memory whatever the table's size), with every cell that
a spreadsheet would read as a formula neutralised.

CSV injection (OWASP): a cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return can run as a
formula when the file is opened in a spreadsheet (`=HYPERLINK("http://evil","click")`). Such a text cell gets
a leading `'`, which spreadsheets show as nothing and which makes the cell text. Every text cell is treated
so, whatever the column: an address, a name, a custom variable's string value, including strings that look
like numbers (`"-5"`). Numbers stored as numbers (a custom variable `-5` sent as a JSON number) are written as
they are: their text is only digits, a sign, a point and an exponent, which no spreadsheet runs as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Any

from imail.kit.clock import rfc3339

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 1000  # rows per read: one keyset page of the table, then its CSV text, then the next
MEDIA_TYPE = "text/csv; charset=utf-8"


def safe_cell(value: Any) -> str:
    """A value as CSV text a spreadsheet will not run as a formula: nothing for null, true/false, RFC 3339
    times, numbers as written, and a leading `'` on text starting with = + - @, tab or CR (OWASP's advice)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        text = ";".join(str(v) for v in value)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def render(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows of cells (already text) as CSV bytes, CRLF line ends (RFC 4180)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}


async def keyset_export(
    session: Callable[[], AbstractAsyncContextManager[Any]],
    header: Sequence[str],
    fetch: Callable[[Any, str | None, int], Awaitable[Sequence[Any]]],
    to_cells: Callable[[Any], Sequence[str]],
    batch: int = BATCH,
    key: Callable[[Any], str] = lambda row: row.id,
) -> AsyncIterator[bytes]:
    """The header, then the rows: `fetch(session, after_id, limit)` returns the next keyset page (rows with an
    `key`, by default their `id`, ascending), each read in its own short session, so no transaction or cursor
    stays open while a slow client downloads. Rows added during the export after the current position are
    included; none repeats."""
    yield render([header])
    after: str | None = None
    while True:
        async with session() as opened:
            rows = await fetch(opened, after, batch)
        if not rows:
            return
        yield render(to_cells(row) for row in rows)
        if len(rows) < batch:
            return
        after = key(rows[-1])
