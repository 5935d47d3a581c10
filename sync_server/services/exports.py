"""Attendees and readings streamed out (SPEC section 13): CSV (the columns an import reads back,
`tags` joined by `;`, `custom.<key>` per custom field) or JSON lines (each line exactly as the
list shows the item), with the lists' filters and order, read in batches on one connection so
memory stays flat whatever the size.

    for chunk in attendee_export(engine, event, filters, ExportFormat.CSV): out.write(chunk)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import String, Table, Text, cast, func, select, true, type_coerce
from sqlalchemy.engine import Engine
from sqlmodel import col

from sync_server.db import is_sqlite
from sync_server.models import Attendee, Event, Scan, TicketType
from sync_server.models.people import AttendeePublic, ScanPublic
from sync_server.services.attendees import AttendeeFilters, filtered_attendees
from sync_server.webhooks.outbox import rfc3339

__all__ = [
    "ATTENDEE_COLUMNS",
    "SCAN_COLUMNS",
    "ExportFormat",
    "attendee_export",
    "media_type",
    "scan_export",
]

BATCH = 2000  # rows read and written at a time
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
SCANS: Table = Scan.__table__  # type: ignore[assignment]


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def media_type(fmt: ExportFormat) -> str:
    return "text/csv; charset=utf-8" if fmt is ExportFormat.CSV else "application/x-ndjson"


ATTENDEE_COLUMNS = (
    "id", "first_name", "last_name", "email", "phone", "company", "ticket_type", "tags", "code",
    "status", "source", "valid_from", "valid_until", "qr", "entries", "last_scan_at",
    "created_at", "updated_at",
)  # fmt: skip
SCAN_COLUMNS = tuple(name for name in ScanPublic.model_fields if name != "object")


def _cell(value: Any) -> Any:
    """A CSV cell: times in RFC 3339, lists joined by `;`, None empty; text a spreadsheet would
    run as a formula (`=…`, `@…`) is prefixed with `'`."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _text(value)
    return value


def _text(value: str | None) -> str | None:
    """Text a spreadsheet would run as a formula (`=…`, `@…`) gets a leading `'` (the csv
    writer writes None as an empty cell)."""
    if value and value[0] in _FORMULA:
        return "'" + value
    return value


_FORMULA = frozenset("=@\t\r")


def _time(value: datetime | None) -> str | None:
    """`rfc3339` for the UTC times the columns hold, without converting them again."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


class _Csv:
    def __init__(self, header: Iterable[str]) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")
        self.writer.writerow(list(header))

    def rows(self, rows: Iterable[Iterable[Any]]) -> bytes:
        self.writer.writerows(rows)
        data = self.buffer.getvalue().encode("utf-8")
        self.buffer.seek(0)
        self.buffer.truncate()
        return data


def _batches(engine: Engine, query: Any, *, plain: bool = False) -> Iterator[list[Any]]:
    """The rows of `query` in batches (mappings, or tuples when `plain`), on one connection (a
    server-side cursor on PostgreSQL)."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        rows = result if plain else result.mappings()
        for partition in rows.partitions(BATCH):
            yield list(partition)


def _stream(
    batches: Iterator[list[Any]],
    fmt: ExportFormat,
    header: tuple[str, ...],
    render: Callable[[Any], Any],
) -> Iterator[bytes]:
    """CSV (`render` gives a row's cells) or JSON lines (`render` gives a line)."""
    if fmt is ExportFormat.CSV:
        out = _Csv(header)
        yield out.rows([])
        for batch in batches:
            yield out.rows(map(render, batch))
    else:
        for batch in batches:
            yield "".join(render(row) + "\n" for row in batch).encode("utf-8")


def attendee_export(
    engine: Engine, event: Event, filters: AttendeeFilters, fmt: ExportFormat
) -> Iterator[bytes]:
    """The event's attendees matching `filters`, newest first, as chunks of bytes."""
    with engine.connect() as conn:
        slugs = dict(
            conn.execute(
                select(TicketType.id, TicketType.slug).where(TicketType.event_id == event.id)  # type: ignore[call-overload]
            ).all()
        )
    order = (col(Attendee.created_at).desc(), col(Attendee.id).desc())
    query = filtered_attendees(event, filters).order_by(*order)
    if fmt is ExportFormat.JSONL:

        def as_json(row: Mapping[str, Any]) -> str:
            return AttendeePublic.of(row, slugs.get(row["ticket_type_id"], "")).model_dump_json()

        return _stream(_batches(engine, query), fmt, (), as_json)
    custom = _custom_keys(engine, query)
    # plain tuples of the columns the CSV shows, read raw and converted by column (no model and
    # no JSON parsing per row unless the cell holds something)
    names = [("ticket_type_id" if n == "ticket_type" else n) for n in ATTENDEE_COLUMNS]
    if custom:
        names.append("custom_data")
    sqlite = is_sqlite(engine)
    narrow = query.with_only_columns(*(_raw(ATTENDEES.c[n], sqlite) for n in names))
    shown = [_cell_of(n, sqlite) for n in names]

    def cells(row: Sequence[Any]) -> list[Any]:
        out = [f(v) if f else v for f, v in zip(shown, row, strict=True)]
        out[_TICKET_TYPE] = slugs.get(row[_TICKET_TYPE])
        if custom:
            data = out.pop()
            out += [_custom_cell(data.get(key)) for key in custom]
        return out

    header = (*ATTENDEE_COLUMNS, *(f"custom.{key}" for key in custom))
    return _stream(_batches(engine, narrow, plain=True), fmt, header, cells)


_TICKET_TYPE = ATTENDEE_COLUMNS.index("ticket_type")
_TEXTS = frozenset({"first_name", "last_name", "email", "phone", "company", "code", "qr"})
_TIMES = frozenset({"valid_from", "valid_until", "last_scan_at", "created_at", "updated_at"})
_JSON = frozenset({"tags", "custom_data"})


def _raw(column: Any, sqlite: bool) -> Any:
    """JSON columns as their text; SQLite's times as the text it keeps."""
    if column.name in _JSON:
        return cast(column, Text)
    if sqlite and column.name in _TIMES:
        return type_coerce(column, String)
    return column


def _cell_of(name: str, sqlite: bool) -> Callable[[Any], Any] | None:
    if name in _TEXTS:
        return _text
    if name in _TIMES:
        return _sqlite_time if sqlite else _time
    if name == "tags":
        return _raw_tags
    if name == "custom_data":
        return _raw_object
    return None


def _sqlite_time(value: str | None) -> str | None:
    """`2026-05-01 19:02:03.123456` (naive UTC, as SQLite keeps it) → `2026-05-01T19:02:03.123Z`."""
    if value is None:
        return None
    fraction = value[19:23] if len(value) >= 23 else ".000"
    return f"{value[:10]}T{value[11:19]}{fraction}Z"


def _raw_tags(value: str | None) -> str:
    return ";".join(json.loads(value)) if value and value != "[]" else ""


def _raw_object(value: str | None) -> dict[str, Any]:
    data = json.loads(value) if value and value != "{}" else None
    return data if isinstance(data, dict) else {}


def _custom_keys(engine: Engine, query: Any) -> list[str]:
    """Every custom field name among the rows, listed by the database (SQLite's `json_each`,
    PostgreSQL's `json_object_keys`)."""
    data = ATTENDEES.c.custom_data
    if is_sqlite(engine):
        pairs = func.json_each(data).table_valued("key")
        objects = func.json_type(data) == "object"
    else:
        pairs = func.json_object_keys(data).table_valued("key").render_derived(name="j")
        objects = func.json_typeof(data) == "object"
    keys = (
        query.with_only_columns(pairs.c.key)
        .select_from(ATTENDEES.join(pairs, true()))
        .where(objects)
        .order_by(None)
        .distinct()
    )
    with engine.connect() as conn:
        return sorted(str(k) for k in conn.execute(keys).scalars())


def _custom_cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, ensure_ascii=False)


def scan_export(
    engine: Engine, event_id: str, where: Mapping[str, str], fmt: ExportFormat
) -> Iterator[bytes]:
    """The event's readings (filtered by column: checkpoint_id, attendee_id, device_id,
    status), newest received first, as chunks of bytes."""
    query = select(SCANS).where(SCANS.c.event_id == event_id)
    for name, value in where.items():
        query = query.where(SCANS.c[name] == value)
    query = query.order_by(SCANS.c.received_at.desc(), SCANS.c.id.desc())

    if fmt is ExportFormat.JSONL:

        def as_json(row: Mapping[str, Any]) -> str:
            return ScanPublic.model_validate(dict(row)).model_dump_json()

        return _stream(_batches(engine, query), fmt, (), as_json)

    def cells(row: Mapping[str, Any]) -> list[Any]:
        return [_cell(row[name]) for name in SCAN_COLUMNS]

    return _stream(_batches(engine, query), fmt, SCAN_COLUMNS, cells)
