"""CSV import: a streamed pass over the uploaded file (spooled to disk by the multipart parser), in batches
written like bulk rows, with per-row results spooled to a temporary file too. Neither the rows nor the
results of a 100,000-row file sit in memory; the whole file is one transaction (a file that turns out
malformed half-way writes nothing).

The mapping is a JSON object from lead field to CSV column header:
    {"email": "Work Email", "first_name": "First", "custom_variables": {"city": "City"}}
Without one, columns named like a lead field (case, spaces and _ ignored: `First Name` → first_name) are
used and the others ignored. A `tags` column holds a lead's tags separated by `;` or `,` (`vip; q3`).
"""

from __future__ import annotations

import csv
import io
import itertools
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import IO, Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller
from imail.errors import InvalidField, MissingField
from imail.kit.text import UNSTORABLE, unstorable
from imail.leads.rows import Prepared, RowInvalid, from_fields
from imail.leads.service import LeadWriter, campaign_for_leads, window_zone
from imail.leads.tags import TagInvalid, split_cell
from imail.mail.templates import NAME

BATCH = 5000
FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "country", "timezone", "tags")
DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD = 64 * 1024
READ_CHUNK = 64 * 1024

csv.field_size_limit(MAX_FIELD)


def _key(header: str) -> str:
    return "".join(ch for ch in header.lower() if ch.isalnum())


class Mapping:
    """Which column feeds which lead field."""

    def __init__(self, fields: dict[str, int], custom: dict[str, int], columns: dict[str, str]):
        self.fields = fields
        self.custom = custom
        self.columns = columns  # field (or custom_variables.name) → header, for messages


def parse_mapping(raw: str | None, header: list[str]) -> Mapping:
    position: dict[str, int] = {}
    duplicated: set[str] = set()
    for i, name in enumerate(header):
        name = name.strip()
        if name in position:
            duplicated.add(name)
        position.setdefault(name, i)

    def column(field: str, name: Any) -> int:
        if not isinstance(name, str):
            raise InvalidField(
                f"mapping.{field}: give a column header (a string); got {_json_kind(name)}",
                f"mapping.{field}",
            )
        if name.strip() not in position:
            shown = ", ".join(repr(h) for h in header[:30])
            raise InvalidField(
                f"mapping.{field}: column {name!r} is not in the file's header row (columns: {shown})",
                f"mapping.{field}",
            )
        if name.strip() in duplicated:
            raise InvalidField(
                f"mapping.{field}: the header has two columns named {name!r}", f"mapping.{field}"
            )
        return position[name.strip()]

    fields: dict[str, int] = {}
    custom: dict[str, int] = {}
    columns: dict[str, str] = {}
    if raw is None or not raw.strip():
        by_key = {_key(h): i for i, h in enumerate(header)}
        for field in FIELDS:
            if _key(field) in by_key:
                fields[field] = by_key[_key(field)]
                columns[field] = header[fields[field]]
        if "email" not in fields:
            raise InvalidField(
                'mapping: no column is named email; send a mapping like {"email": "Work Email"} '
                f"(the file's columns: {', '.join(repr(h) for h in header[:30])})",
                "mapping",
            )
        return Mapping(fields, custom, columns)

    try:
        # orjson bounds the nesting (1024 levels) without recursing in Python: a mapping nested thousands deep
        # is a 400 here, not a RecursionError. Nothing below looks deeper than custom_variables' values.
        spec = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidField(f"mapping is not valid JSON: {exc}", "mapping") from None
    if not isinstance(spec, dict):
        raise InvalidField('mapping must be a JSON object like {"email": "Work Email"}', "mapping")
    for field, value in spec.items():
        if field == "custom_variables":
            if not isinstance(value, dict):
                raise InvalidField(
                    'mapping.custom_variables must be an object of variable name → column, like {"city": '
                    '"City"}',
                    "mapping.custom_variables",
                )
            for name, header_name in value.items():
                if not NAME.match(name):
                    raise InvalidField(
                        f"mapping.custom_variables: {name!r} is not a variable name; use letters, digits "
                        "and _",
                        f"mapping.custom_variables.{name}",
                    )
                custom[name] = column(f"custom_variables.{name}", header_name)
                columns[f"custom_variables.{name}"] = header_name
        elif field in FIELDS:
            fields[field] = column(field, value)
            columns[field] = value
        else:
            raise InvalidField(
                f"mapping: {field!r} is not a lead field; map any of {', '.join(FIELDS)} or custom_variables",
                f"mapping.{field}",
            )
    if "email" not in fields:
        raise MissingField("mapping.email is required: which column holds the address", "mapping.email")
    return Mapping(fields, custom, columns)


def _json_kind(value: Any) -> str:
    """What a JSON value is, for messages (never its repr: it may be nested a thousand levels deep)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else "a boolean" if isinstance(value, bool) else "a number"


def _sniff(first_line: str, delimiter: str | None) -> str:
    if delimiter is not None:
        if delimiter == "\\t":
            delimiter = "\t"
        if delimiter not in DELIMITERS:
            raise InvalidField("delimiter must be one of , ; | or \\t (tab)", "delimiter")
        return delimiter
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _prepare(record: list[str], width: int, mapping: Mapping, zone: str | None) -> Prepared | RowInvalid:
    if len(record) != width:
        return RowInvalid(None, f"the row has {len(record)} columns; the header has {width}")
    fields = mapping.fields
    values = {name: record[i].strip() for name, i in fields.items()}
    custom = {name: record[i].strip() for name, i in mapping.custom.items() if record[i].strip()}
    try:
        for name in ("first_name", "last_name", "company", "title"):
            if len(values.get(name) or "") > 200:
                raise RowInvalid(name, f"{name}: at most 200 characters")
        if len(values.get("phone") or "") > 40:
            raise RowInvalid("phone", "phone: at most 40 characters")
        if len(values.get("country") or "") > 2:
            raise RowInvalid(
                "country", f"country: {values['country']!r} is not an ISO 3166-1 alpha-2 code (like US)"
            )
        return from_fields(
            values.get("email", ""),
            values.get("first_name"),
            values.get("last_name"),
            values.get("company"),
            values.get("title"),
            values.get("phone"),
            values.get("country"),
            values.get("timezone"),
            custom,
            zone,
            _tags(values.get("tags")),
        )
    except RowInvalid as problem:
        column = mapping.columns.get(problem.field or "")
        if column is not None:
            problem.reason = f"{problem.reason} (column {column!r})"
        return problem


def _tags(cell: str | None) -> list[str]:
    """A `tags` cell: tags separated by `;` or `,`."""
    if not cell:
        return []
    try:
        return split_cell(cell)
    except TagInvalid as problem:
        raise RowInvalid(problem.field, problem.reason) from None


class ImportResult:
    """Counts, and the per-row results spooled to a temporary file (`stream()` yields the response body)."""

    def __init__(self, campaign_id: str, totals: dict[str, int], total: int, spool: IO[bytes]):
        self.campaign_id = campaign_id
        self.totals = totals
        self.total = total
        self.spool = spool

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            head = {
                "object": "lead_import_result",
                "campaign_id": self.campaign_id,
                "total": self.total,
                **self.totals,
            }
            yield orjson.dumps(head)[:-1] + b',"results":['
            self.spool.seek(0)
            while chunk := self.spool.read(READ_CHUNK):
                yield chunk
            yield b"]}"
        finally:
            self.spool.close()


async def import_csv(
    session: AsyncSession,
    caller: Caller,
    campaign_id: str,
    upload: IO[bytes],
    mapping_raw: str | None,
    delimiter: str | None,
) -> ImportResult:
    campaign = await campaign_for_leads(session, caller, campaign_id)
    zone = window_zone(campaign)
    # Decoded as UTF-8 (a BOM is dropped) line by line; newline="" leaves line ends to the csv module.
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    lines = _storable_lines(iter(text))
    chained: Iterator[str] | None = None
    reader = None
    # Handed to the response, which closes it once streamed (or closed below if the import fails).
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
    try:
        try:
            first = next(lines, None)
            if first is None or not first.strip():
                raise InvalidField(
                    "file is empty: the first line must be a header row naming the columns", "file"
                )
            sep = _sniff(first, delimiter)
            chained = itertools.chain((first,), lines)
            # strict: a broken quote is an error, not a silent merge of the rest of the file into one field.
            reader = csv.reader(chained, delimiter=sep, strict=True)
            header = next(reader)
            mapping = parse_mapping(None if mapping_raw is None else mapping_raw, header)
            width = len(header)
            writer = LeadWriter(session, caller.tenant, campaign)
            batch: list[tuple[int, Prepared | RowInvalid, int | None]] = []
            index = 0
            wrote = False
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue  # blank lines, and the all-empty rows spreadsheets append
                batch.append((index, _prepare(record, width, mapping, zone), reader.line_num))
                index += 1
                if len(batch) >= BATCH:
                    wrote = _spool(spool, await writer.write(batch), wrote)
                    batch = []
            if batch:
                wrote = _spool(spool, await writer.write(batch), wrote)
        except UnicodeDecodeError as exc:
            raise InvalidField(
                f'file is not UTF-8 (byte 0x{exc.object[exc.start]:02x}); export it as "CSV UTF-8"', "file"
            ) from None
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 1
            raise InvalidField(f"file is not valid CSV (line {line}): {exc}", "file") from None
        if index == 0:
            raise InvalidField("file has a header row but no data rows", "file")
        return ImportResult(campaign.id, writer.totals(), index, spool)
    except BaseException:
        spool.close()
        raise
    finally:
        text.detach()  # the upload is the framework's to close


def _storable_lines(lines: Iterator[str]) -> Iterator[str]:
    """The file's lines; the first holding text no column can store (kit.text) refuses the whole file."""
    for number, line in enumerate(lines, 1):
        if unstorable(line):
            raise InvalidField(
                f"file: line {number} {UNSTORABLE}; remove them and upload the file again", "file"
            )
        yield line


def _spool(spool: IO[bytes], results: list[dict[str, Any]], wrote: bool) -> bool:
    if results:
        body = b",".join(orjson.dumps(r) for r in results)
        spool.write(b"," + body if wrote else body)
        return True
    return wrote


def count_rows(upload: IO[bytes], delimiter: str | None, limit: int) -> int:
    """How many data rows the file has, counting no further than `limit` (the upload is rewound after). A file
    that can't be read counts what could be read: the import that follows reports the problem."""
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    count = 0
    try:
        first = next(text, None)
        if first is None:
            return 0
        try:
            sep = _sniff(first, delimiter)
        except InvalidField:
            return 0
        reader = csv.reader(itertools.chain((first,), text), delimiter=sep, strict=True)
        next(reader, None)
        for record in reader:
            if any(cell.strip() for cell in record):
                count += 1
                if count >= limit:
                    break
    except (UnicodeDecodeError, csv.Error):
        pass
    finally:
        text.detach()
        upload.seek(0)
    return count


@contextmanager
def decoded(upload: IO[bytes]) -> Iterator[io.TextIOWrapper]:
    """The upload as UTF-8 text (a BOM dropped), detached after: the upload is the framework's to close."""
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    try:
        yield text
    finally:
        text.detach()


def parse_rows(
    text: io.TextIOWrapper, mapping_raw: str | None, delimiter: str | None
) -> tuple[Mapping, int, Iterator[tuple[int, int, list[str]]]]:
    """The file's mapping, header width and data rows as (index, line, cells), for an import run as a job: the
    same checks and messages as `import_csv`, raised as the rows are read."""
    lines = _storable_lines(iter(text))
    try:
        first = next(lines, None)
        if first is None or not first.strip():
            raise InvalidField(
                "file is empty: the first line must be a header row naming the columns", "file"
            )
        sep = _sniff(first, delimiter)
        reader = csv.reader(itertools.chain((first,), lines), delimiter=sep, strict=True)
        header = next(reader)
    except UnicodeDecodeError as exc:
        raise InvalidField(
            f'file is not UTF-8 (byte 0x{exc.object[exc.start]:02x}); export it as "CSV UTF-8"', "file"
        ) from None
    except csv.Error as exc:
        raise InvalidField(f"file is not valid CSV (line 1): {exc}", "file") from None
    mapping = parse_mapping(mapping_raw, header)

    def rows() -> Iterator[tuple[int, int, list[str]]]:
        index = 0
        try:
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                yield index, reader.line_num, record
                index += 1
        except UnicodeDecodeError as exc:
            raise InvalidField(
                f'file is not UTF-8 (byte 0x{exc.object[exc.start]:02x}); export it as "CSV UTF-8"', "file"
            ) from None
        except csv.Error as exc:
            raise InvalidField(f"file is not valid CSV (line {reader.line_num}): {exc}", "file") from None
        if index == 0:
            raise InvalidField("file has a header row but no data rows", "file")

    return mapping, len(header), rows()


def mapping_to_json(mapping: Mapping) -> dict[str, Any]:
    return {"fields": mapping.fields, "custom": mapping.custom, "columns": mapping.columns}


def mapping_from_json(data: dict[str, Any]) -> Mapping:
    return Mapping(dict(data["fields"]), dict(data["custom"]), dict(data["columns"]))


def prepare_record(
    record: list[str], width: int, mapping: Mapping, zone: str | None
) -> Prepared | RowInvalid:
    return _prepare(record, width, mapping, zone)
