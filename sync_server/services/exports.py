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
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine
from sqlmodel import col

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
    if isinstance(value, str) and value[:1] in ("=", "@", "\t", "\r"):
        return "'" + value
    return value


class _Csv:
    def __init__(self, header: Iterable[str]) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")
        self.writer.writerow(list(header))

    def rows(self, rows: Iterable[Iterable[Any]]) -> bytes:
        self.writer.writerows([_cell(v) for v in row] for row in rows)
        data = self.buffer.getvalue().encode("utf-8")
        self.buffer.seek(0)
        self.buffer.truncate()
        return data


def _batches(engine: Engine, query: Any) -> Iterator[list[Mapping[str, Any]]]:
    """The rows of `query` in batches, on one connection (a server-side cursor on PostgreSQL)."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for partition in result.mappings().partitions(BATCH):
            yield list(partition)


def _stream(
    batches: Iterator[list[Mapping[str, Any]]],
    fmt: ExportFormat,
    header: tuple[str, ...],
    as_cells: Callable[[Mapping[str, Any]], list[Any]],
    as_json: Callable[[Mapping[str, Any]], str],
) -> Iterator[bytes]:
    if fmt is ExportFormat.CSV:
        out = _Csv(header)
        yield out.rows([])
        for batch in batches:
            yield out.rows(as_cells(row) for row in batch)
    else:
        for batch in batches:
            yield "".join(as_json(row) + "\n" for row in batch).encode("utf-8")


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
    custom = _custom_keys(engine, query) if fmt is ExportFormat.CSV else []

    def cells(row: Mapping[str, Any]) -> list[Any]:
        data = row["custom_data"] or {}
        plain = [
            slugs.get(row["ticket_type_id"]) if name == "ticket_type" else row[name]
            for name in ATTENDEE_COLUMNS
        ]
        return plain + [_custom_cell(data.get(key)) for key in custom]

    def as_json(row: Mapping[str, Any]) -> str:
        return AttendeePublic.of(row, slugs.get(row["ticket_type_id"], "")).model_dump_json()

    header = (*ATTENDEE_COLUMNS, *(f"custom.{key}" for key in custom))
    return _stream(_batches(engine, query), fmt, header, cells, as_json)


def _custom_keys(engine: Engine, query: Any) -> list[str]:
    """Every custom field name among the rows (a first, light pass: one column)."""
    keys: dict[str, None] = {}
    narrow = query.with_only_columns(col(Attendee.custom_data)).order_by(None)
    for batch in _batches(engine, narrow):
        for row in batch:
            for key in row["custom_data"] or {}:
                keys.setdefault(str(key))
    return sorted(keys)


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

    def cells(row: Mapping[str, Any]) -> list[Any]:
        return [row[name] for name in SCAN_COLUMNS]

    def as_json(row: Mapping[str, Any]) -> str:
        return ScanPublic.model_validate(dict(row)).model_dump_json()

    return _stream(_batches(engine, query), fmt, SCAN_COLUMNS, cells, as_json)
