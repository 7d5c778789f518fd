"""`GET /v1/leads/export`: the matching leads as CSV, streamed in constant memory.

Columns: every lead field, then `tags` (`;`-separated), then one `custom_variables.<name>` column per custom
variable name any matching lead uses. The names come from one query before the first row (so the header is
known up front); a variable first used by a lead written after that query is not a column of this export."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from imail.db import Database
from imail.kit import csv_export
from imail.kit.tenancy import Tenant
from imail.leads.repository import EXPORT_COLUMNS, LeadQuery, LeadRepository
from imail.leads.schemas import LeadFilter
from imail.leads.service import lead_query

CUSTOM_PREFIX = "custom_variables."


async def export_leads(
    database: Database, tenant: Tenant, filters: LeadFilter, batch: int = csv_export.BATCH
) -> AsyncIterator[bytes]:
    """The CSV's bytes, chunk by chunk. The filters are checked and the header read now (a bad filter or a
    failed query is an error response, not a broken stream); the rows are read as the iterator is consumed. A
    plain function of the service layer: a background job can write the same bytes to a file."""
    query = lead_query(filters)
    async with database.read() as session:
        names = await LeadRepository(session, tenant).custom_variable_keys(query)
    return _rows(database, tenant, query, names, batch)


async def _rows(
    database: Database, tenant: Tenant, query: LeadQuery, names: list[str], batch: int
) -> AsyncIterator[bytes]:
    header = [*EXPORT_COLUMNS, "tags", *(CUSTOM_PREFIX + name for name in names)]

    async def fetch(session: Any, after: str | None, limit: int) -> list[tuple[Any, list[str]]]:
        repo = LeadRepository(session, tenant)
        rows = await repo.export_batch(query, after, limit)
        tags = await repo.tags_of([row.id for row in rows])
        return [(row, tags.get(row.id, [])) for row in rows]

    def to_cells(item: tuple[Any, list[str]]) -> Sequence[str]:
        row, tags = item
        custom = row.custom_variables or {}
        return [
            *(csv_export.safe_cell(getattr(row, name)) for name in EXPORT_COLUMNS),
            csv_export.safe_cell(tags),
            *(csv_export.safe_cell(custom.get(name)) for name in names),
        ]

    async for chunk in csv_export.keyset_export(
        database.read, header, fetch, to_cells, batch, key=lambda item: item[0].id
    ):
        yield chunk
