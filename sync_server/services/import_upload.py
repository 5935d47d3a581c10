"""Reading an attendee import (SPEC section 4): a CSV or JSON upload into `SourceRow`s, refused
with 415, 413 or 422 when the upload as a whole is unusable.

    rows = parse_upload(body, "text/csv")
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from sync_server.errors import ApiError
from sync_server.models.people import AttendeeCreate

__all__ = [
    "MAX_ROWS",
    "READ_ONLY_COLUMNS",
    "RowError",
    "SourceRow",
    "Upload",
    "invalid",
    "parse_upload",
    "rejected_rows_csv",
    "upload_format",
]

MAX_ROWS = 200_000
CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"})
JSON_TYPES = frozenset({"application/json", "text/json"})
FIELDS = frozenset(AttendeeCreate.model_fields)
REQUIRED = frozenset({"first_name", "last_name", "ticket_type"})
PLAIN_COLUMNS = FIELDS - {"tags", "status", "custom_data"}
# what an export writes and an import cannot set: read back, they are ignored (with a warning)
READ_ONLY_COLUMNS = frozenset(
    {"id", "source", "qr", "entries", "last_scan_at", "created_at", "updated_at", "inside"}
    | {"import_errors"}  # the column a rejected-rows file adds
)
_TAG_SEPARATOR = re.compile("[;|]")


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one data row (1-based, not counting a CSV header)."""

    row: int
    field: str
    message: str
    code: str = "invalid"

    def public(self, line: int | None = None) -> dict[str, Any]:
        """`line`: the first physical line of the record in the file (the header is line 1)."""
        return {"row": self.row, "line": line, "field": self.field, "message": self.message}

    def detail(self) -> dict[str, Any]:
        return {
            "field": f"row {self.row}: {self.field}",
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A row as read from the upload, before validation (or what made it unreadable)."""

    number: int
    data: dict[str, Any]
    error: RowError | None = None
    line: int | None = None  # where the record starts in a CSV file (the header is line 1)


@dataclass(frozen=True, slots=True)
class Upload:
    """An upload's rows, what was noticed about its columns, and each CSV row's first line."""

    rows: list[SourceRow]
    warnings: list[str]
    csv_text: str | None = None  # the file as read, for its rejected rows (CSV only)

    def lines(self) -> dict[int, int]:
        return {r.number: r.line for r in self.rows if r.line is not None}


def invalid(message: str, details: list[dict[str, Any]] | None = None) -> ApiError:
    return ApiError(422, "validation_error", message, details)


def upload_format(content_type: str | None) -> tuple[str, str]:
    """`("csv" | "json", charset)` for a Content-Type header; 415 for anything else."""
    media, _, params = (content_type or "").partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    kind = {**dict.fromkeys(CSV_TYPES, "csv"), **dict.fromkeys(JSON_TYPES, "json")}.get(
        media.strip().lower()
    )
    if kind is None:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the attendees as text/csv or as a JSON array (application/json)",
        )
    return kind, charset


def parse_upload(body: bytes, content_type: str | None) -> Upload:
    """The rows of a CSV or JSON upload; 415, 413 or 422 when the upload as a whole is unusable."""
    kind, charset = upload_format(content_type)
    try:
        text = body.decode("utf-8-sig" if charset.lower() in ("utf-8", "utf8") else charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise invalid(f"The body is not valid {charset[:40]} text") from exc
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise invalid("The body is empty: send a header row and attendee rows")
    if kind == "json":
        return Upload(_parse_json(text), [])
    return replace(_parse_csv(text), csv_text=text)


def _too_many() -> ApiError:
    return ApiError(413, "payload_too_large", f"An import holds at most {MAX_ROWS:,} rows")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_json(text: str) -> Any:
    """JSON without NaN or Infinity (no database stores them)."""
    return json.loads(text, parse_constant=_refuse_constant)


def _parse_json(text: str) -> list[SourceRow]:
    try:
        items = _load_json(text)
    except (ValueError, RecursionError) as exc:
        raise invalid("The body is not valid JSON") from exc
    if not isinstance(items, list):
        raise invalid("The body must be a JSON array of attendee objects")
    if len(items) > MAX_ROWS:
        raise _too_many()
    return [
        SourceRow(n, item)
        if isinstance(item, dict)
        else SourceRow(n, {}, RowError(n, "row", "must be a JSON object"))
        for n, item in enumerate(items, start=1)
    ]


def _column(name: str) -> str:
    clean = name.strip()
    if clean.lower().startswith("custom."):
        return "custom." + clean[7:].strip()
    return clean.lower().replace(" ", "_").replace("-", "_")


def _check_header(header: list[str]) -> tuple[list[str], list[str]]:
    """The header with each column as the rows read it, and the warnings about it: an export's
    read-only column is ignored, another unknown column is kept as a custom field of its name;
    duplicate or missing columns refuse the file."""

    def problem(code: str, message: str) -> dict[str, str]:
        return {"field": "header", "code": code, "message": message}

    warnings, columns = [], []
    for n in header:
        if n in READ_ONLY_COLUMNS:
            warnings.append(f"column {n!r} is set by the server: ignored")
            columns.append("")
        elif n and n not in FIELDS and not n.startswith("custom."):
            near = difflib.get_close_matches(n, sorted(FIELDS), n=1, cutoff=0.8)
            if near:  # a misspelt field: its values are not taken as anything else
                warnings.append(f"unknown column {n[:100]!r} ignored (did you mean {near[0]!r}?)")
                columns.append("")
            else:
                warnings.append(f"unknown column {n[:100]!r} kept as custom field {n[:100]!r}")
                columns.append("custom." + n)
        else:
            columns.append(n)
    problems = [
        problem("duplicate_column", f"duplicate column {n[:100]!r}")
        for n in sorted({n for n in header if n and header.count(n) > 1})
    ]
    problems += [
        problem("missing_column", f"missing column {n!r}") for n in sorted(REQUIRED - set(header))
    ]
    if problems:
        raise invalid("The CSV header is not usable", problems[:50])
    return columns, warnings


def _parse_csv(text: str) -> Upload:
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=max(",;\t", key=first_line.count))
    try:
        header, warnings = _check_header([_column(name) for name in next(reader)])
    except csv.Error as exc:
        raise invalid(f"The CSV header cannot be read: {exc}") from exc
    rows: list[SourceRow] = []
    for number, (line, cells) in enumerate(_records(reader), start=1):
        if number > MAX_ROWS:
            raise _too_many()
        if isinstance(cells, csv.Error):
            error = RowError(number, "row", f"unreadable CSV: {cells}")
            rows.append(SourceRow(number, {}, error, line))
        elif any(cells):
            row = _csv_row(number, header, cells)
            rows.append(SourceRow(row.number, row.data, row.error, line))
    return Upload(rows, warnings)


def _records(reader: Any) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """Every non-blank record with its first physical line (blank lines count as lines); one the
    CSV reader chokes on (a cell over 128 kB) comes as its error."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, exc
            continue
        yield start, cells  # a blank line is [] (counted as a row and a line, then skipped)


def _csv_row(number: int, header: list[str], cells: list[str]) -> SourceRow:
    if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
        return SourceRow(
            number,
            {},
            RowError(number, "row", f"{len(cells)} cells but only {len(header)} columns"),
        )
    data: dict[str, Any] = dict.fromkeys(REQUIRED & set(header[len(cells) :]), "")
    custom: dict[str, Any] | None = None
    for name, cell in zip(header, cells, strict=False):
        value = cell.strip()
        if name in PLAIN_COLUMNS:
            data[name] = value if value or name in REQUIRED else None
        elif name == "tags":
            data["tags"] = [tag for tag in _TAG_SEPARATOR.split(value) if tag.strip()]
        elif name == "status":
            if value:
                data["status"] = value.lower()
        elif name == "custom_data":
            try:
                loaded = _load_json(value) if value else {}
            except (ValueError, RecursionError):
                loaded = None
            if not isinstance(loaded, dict):
                return SourceRow(number, {}, RowError(number, name, "must be a JSON object"))
            custom = {**loaded, **(custom or {})}
        elif name:
            custom = {} if custom is None else custom
            if value:
                custom[name[7:]] = value
    if custom is not None:
        data["custom_data"] = custom
    return SourceRow(number, data)


def rejected_rows_csv(text: str, errors: list[dict[str, Any]]) -> str:
    """The header and the records of `text` (a CSV import) that `errors` rejected, as they were,
    with an `import_errors` column saying why: fix them and import this file again."""
    why: dict[int, list[str]] = {}
    for error in errors:
        why.setdefault(int(error["row"]), []).append(f"{error['field']}: {error['message']}")
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    try:
        writer.writerow([*next(reader), "import_errors"])
    except (StopIteration, csv.Error):
        return ""
    for number, (_, cells) in enumerate(_records(reader), start=1):
        if number in why and not isinstance(cells, csv.Error):
            writer.writerow([*cells, "; ".join(why[number])])
    return out.getvalue()
