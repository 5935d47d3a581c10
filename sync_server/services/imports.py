"""Attendee imports (SPEC section 4): read a CSV or JSON upload into rows, validate each row, and
upsert the valid ones by email or code in bulk, in one transaction.

    rows = parse_upload(body, "text/csv")
    result = import_attendees(session, event=event, rows=rows, secret=secret)
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from shared import ids
from shared.tickets import TicketPayload, issue_tickets
from sync_server.db import utcnow
from sync_server.errors import ApiError
from sync_server.models import Attendee, AttendeeTombstone, Event, TicketType
from sync_server.models.base import new_id
from sync_server.models.people import AttendeeCreate, AttendeeSource
from sync_server.services.attendees import announce_registered, issue_qr, ticket_payload
from sync_server.services.events import bump_seq, conflict, event_private_key
from sync_server.webhooks import outbox

__all__ = [
    "MAX_ROWS",
    "ImportOptions",
    "ImportResult",
    "Progress",
    "RowError",
    "SourceRow",
    "import_attendees",
    "parse_upload",
    "upload_format",
]

MAX_ROWS = 200_000
CHUNK_SIZE = 5_000
MAX_REPORTED_ERRORS = 1_000
MAX_DEPTH = 32
CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"})
JSON_TYPES = frozenset({"application/json", "text/json"})
FIELDS = frozenset(AttendeeCreate.model_fields)
REQUIRED = frozenset({"first_name", "last_name", "ticket_type"})
PLAIN_COLUMNS = FIELDS - {"tags", "status", "custom_data"}
COMPARED = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "ticket_type_id",
    "tags",
    "custom_data",
    "code",
    "status",
    "valid_from",
    "valid_until",
)
QR_INPUTS = ("code", "ticket_type_id", "valid_from", "valid_until")
TEXT_FIELDS = ("first_name", "last_name", "email", "phone", "company", "code")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_TAG_SEPARATOR = re.compile("[;|]")
_TABLE: Table = Attendee.__table__  # type: ignore[attr-defined]

Progress = Callable[[str, int, int], None]
"""Told `(phase, done, total)` as an import advances: "validating", "signing", "writing"."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one data row (1-based, not counting a CSV header)."""

    row: int
    field: str
    message: str
    code: str = "invalid"

    def public(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}

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


@dataclass(slots=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """The answer body; `errors` stops at the first 1,000 (`failed` counts every bad row)."""
        return {
            "object": "import_result",
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "errors": [e.public() for e in self.errors[:MAX_REPORTED_ERRORS]],
        }


@dataclass(frozen=True, slots=True)
class ImportOptions:
    atomic: bool = False
    chunk_size: int = CHUNK_SIZE
    progress: Progress | None = None


# --- reading the upload -----------------------------------------------------------------------


def _invalid(message: str, details: list[dict[str, Any]] | None = None) -> ApiError:
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


def parse_upload(body: bytes, content_type: str | None) -> list[SourceRow]:
    """The rows of a CSV or JSON upload; 415, 413 or 422 when the upload as a whole is unusable."""
    kind, charset = upload_format(content_type)
    try:
        text = body.decode("utf-8-sig" if charset.lower() in ("utf-8", "utf8") else charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise _invalid(f"The body is not valid {charset[:40]} text") from exc
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise _invalid("The body is empty: send a header row and attendee rows")
    return _parse_json(text) if kind == "json" else _parse_csv(text)


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
        raise _invalid("The body is not valid JSON") from exc
    if not isinstance(items, list):
        raise _invalid("The body must be a JSON array of attendee objects")
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


def _check_header(header: list[str]) -> None:
    def problem(code: str, message: str) -> dict[str, str]:
        return {"field": "header", "code": code, "message": message}

    problems = [
        problem("unknown_column", f"unknown column {n[:100]!r} (name custom fields custom.<key>)")
        for n in header
        if n and n not in FIELDS and not n.startswith("custom.")
    ]
    problems += [
        problem("duplicate_column", f"duplicate column {n[:100]!r}")
        for n in sorted({n for n in header if n and header.count(n) > 1})
    ]
    problems += [
        problem("missing_column", f"missing column {n!r}") for n in sorted(REQUIRED - set(header))
    ]
    if problems:
        raise _invalid("The CSV header is not usable", problems[:50])


def _parse_csv(text: str) -> list[SourceRow]:
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=max(",;\t", key=first_line.count))
    try:
        header = [_column(name) for name in next(reader)]
    except csv.Error as exc:
        raise _invalid(f"The CSV header cannot be read: {exc}") from exc
    _check_header(header)
    rows: list[SourceRow] = []
    for number, cells in enumerate(_records(reader), start=1):
        if number > MAX_ROWS:
            raise _too_many()
        if isinstance(cells, csv.Error):
            rows.append(SourceRow(number, {}, RowError(number, "row", f"unreadable CSV: {cells}")))
        elif any(cells):
            rows.append(_csv_row(number, header, cells))
    return rows


def _records(reader: Iterator[list[str]]) -> Iterator[list[str] | csv.Error]:
    """Every record; one the CSV reader chokes on (a cell over 128 kB) comes as its error."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc


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


# --- deciding what each row does --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Valid:
    """A validated row: every field's value (defaults filled in) and the fields it gave."""

    number: int
    values: dict[str, Any]
    given: frozenset[str]


def _field_of(error: Any) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    return _CONTROL.sub("?", loc)[:100] or "row"


def _too_deep(value: Any) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict | list):
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _validate(row: SourceRow, types: dict[str, str]) -> _Valid | list[RowError]:
    """Validate with `AttendeeCreate`, then refuse what the door cannot show or store."""
    if row.error is not None:
        return [row.error]
    try:
        model = AttendeeCreate.model_validate(row.data)
    except ValidationError as exc:
        return [
            RowError(row.number, _field_of(e), str(e["msg"])[:200], str(e["type"]))
            for e in exc.errors()[:5]
        ]
    except RecursionError:
        return [RowError(row.number, "custom_data", "nested too deeply")]
    values = dict(model.__dict__)
    texts = {name: values[name] or "" for name in TEXT_FIELDS} | {"tags": "".join(values["tags"])}
    if _CONTROL.search("".join(texts.values())):
        bad = next(name for name, text in texts.items() if _CONTROL.search(text))
        return [RowError(row.number, bad, "contains control characters", "control_characters")]
    if _too_deep(values["custom_data"]):
        return [RowError(row.number, "custom_data", f"nested deeper than {MAX_DEPTH} levels")]
    values["ticket_type_id"] = types.get(values.pop("ticket_type"))
    if values["ticket_type_id"] is None:
        return [RowError(row.number, "ticket_type", "unknown ticket type", "unknown")]
    values["status"] = str(values["status"])
    values["email_norm"] = values["email"].strip().lower() if values["email"] else None
    given = {"ticket_type_id" if n == "ticket_type" else n for n in model.model_fields_set}
    return _Valid(row.number, values, frozenset(given))


@dataclass(slots=True)
class _Index:
    """The event's attendees as the import found them, and what the file has claimed so far."""

    rows: dict[str, dict[str, Any]]
    by_email: dict[str, str] = field(default_factory=dict)
    by_code: dict[str, str] = field(default_factory=dict)
    seen: dict[tuple[str, Any], int] = field(default_factory=dict)
    claimed: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for attendee_id, row in self.rows.items():
            if row["email_norm"]:
                self.by_email[row["email_norm"]] = attendee_id
            if row["code"]:
                self.by_code[row["code"]] = attendee_id

    def match(self, row: _Valid) -> str | RowError | None:
        """The attendee this row updates, None to create one, or why the row clashes."""
        email = row.values["email_norm"] if "email" in row.given else None
        code = row.values["code"] if "code" in row.given else None
        for key in (("email", email), ("code", code)):
            if key[1] and key in self.seen:
                return RowError(
                    row.number,
                    key[0],
                    f"duplicate {key[0]} in the file (row {self.seen[key]})",
                    "duplicate",
                )
        by_email = self.by_email.get(email) if email else None
        by_code = self.by_code.get(code) if code else None
        if by_email and by_code and by_email != by_code:
            return RowError(
                row.number,
                "code",
                "the email belongs to one attendee and the code to another",
                "conflict",
            )
        target = by_email or by_code
        if target and target in self.claimed:
            return RowError(
                row.number,
                "email" if by_email else "code",
                f"the same attendee as row {self.claimed[target]}",
                "duplicate",
            )
        for key in (("email", email), ("code", code)):
            if key[1]:
                self.seen[key] = row.number
        if target:
            self.claimed[target] = row.number
        return target


@dataclass(slots=True)
class _Plan:
    creates: list[_Valid] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    def upsert(self, row: _Valid, current: dict[str, Any] | None) -> None:
        """Create, update or leave alone, depending on what the row changes."""
        if current is None:
            self.creates.append(row)
            return
        merged = {**current, **{name: row.values[name] for name in row.given}}
        if "email" in row.given:
            merged["email_norm"] = row.values["email_norm"]
        if any(merged[name] != current[name] for name in COMPARED):
            self.updates.append(merged)
        else:
            self.unchanged += 1

    def failed(self) -> int:
        return len({e.row for e in self.errors})


def _validate_all(
    rows: Sequence[SourceRow], types: dict[str, TicketType], progress: Progress | None
) -> tuple[list[_Valid], list[RowError]]:
    slugs = {t.slug: t.id for t in types.values()}
    valid: list[_Valid] = []
    errors: list[RowError] = []
    for i, row in enumerate(rows, start=1):
        checked = _validate(row, slugs)
        if isinstance(checked, list):
            errors.extend(checked)
        else:
            valid.append(checked)
        if progress and (i % CHUNK_SIZE == 0 or i == len(rows)):
            progress("validating", i, len(rows))
    return valid, errors


def _plan(
    valid: list[_Valid], errors: list[RowError], existing: dict[str, dict[str, Any]]
) -> _Plan:
    """Match every valid row against the event's attendees (and the rows before it)."""
    index, plan = _Index(existing), _Plan(errors=list(errors))
    for row in valid:
        target = index.match(row)
        if isinstance(target, RowError):
            plan.errors.append(target)
        else:
            plan.upsert(row, existing[target] if target else None)
    plan.errors.sort(key=lambda e: e.row)
    return plan


# --- reading the event, issuing tickets, writing -----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Snapshot:
    seq: int
    types: dict[str, TicketType]
    attendees: dict[str, dict[str, Any]]


def _attendees(
    session: Session, event_id: str, since: int | None = None
) -> dict[str, dict[str, Any]]:
    columns = [_TABLE.c[name] for name in ("id", "email_norm", "qr", *COMPARED)]
    query = select(*columns).where(_TABLE.c.event_id == event_id)
    if since is not None:
        query = query.where(_TABLE.c.seq > since)
    return {row["id"]: dict(row) for row in session.execute(query).mappings()}


def _snapshot(session: Session, event_id: str) -> _Snapshot:
    """The event's ticket types and attendees, read without taking SQLite's write lock."""
    with Session(session.get_bind().execution_options(sqlite_immediate=False)) as reader:
        seq = reader.execute(select(col(Event.change_seq)).where(col(Event.id) == event_id))
        found = reader.execute(select(TicketType).where(col(TicketType.event_id) == event_id))
        return _Snapshot(
            int(seq.scalar_one()), {t.id: t for t in found.scalars()}, _attendees(reader, event_id)
        )


def _lock_and_refresh(session: Session, event_id: str, snapshot: _Snapshot) -> bool:
    """Lock the event's change counter; bring the snapshot's attendees up to date when anything
    changed since it was read (every change takes a new `seq`). True when something had."""
    seq = session.execute(
        select(col(Event.change_seq)).where(col(Event.id) == event_id).with_for_update()
    ).scalar_one()
    if seq == snapshot.seq:
        return False
    snapshot.attendees.update(_attendees(session, event_id, since=snapshot.seq))
    gone = select(col(AttendeeTombstone.id)).where(
        col(AttendeeTombstone.event_id) == event_id, col(AttendeeTombstone.seq) > snapshot.seq
    )
    for attendee_id in session.execute(gone).scalars():
        snapshot.attendees.pop(attendee_id, None)
    return True


@dataclass(slots=True)
class _Tickets:
    """New attendees' ids and signed QR strings, issued before the write lock is taken."""

    event: Event
    types: dict[str, TicketType]
    secret: bytes
    issued: dict[int, tuple[str, str]] = field(default_factory=dict)

    def qr(self, attendee_id: str, values: dict[str, Any]) -> str:
        return issue_qr(
            self.event, self.types[values["ticket_type_id"]], attendee_id, values, self.secret
        )

    def issue(self, rows: list[_Valid], progress: Progress | None) -> None:
        """Ids for every new row, and signed tickets for those without a custom code (signed
        on both cores: Ed25519 releases the GIL)."""
        unsigned: list[tuple[int, str, TicketPayload]] = []
        for row in rows:
            if row.number in self.issued:
                continue
            attendee_id = new_id(ids.ATTENDEE)
            if row.values.get("code"):
                self.issued[row.number] = attendee_id, str(row.values["code"])
            else:
                ticket_type = self.types[row.values["ticket_type_id"]]
                payload = ticket_payload(self.event, ticket_type, attendee_id, row.values)
                unsigned.append((row.number, attendee_id, payload))
        key = event_private_key(self.event, self.secret)
        for start in range(0, len(unsigned), CHUNK_SIZE):
            chunk = unsigned[start : start + CHUNK_SIZE]
            codes = issue_tickets([payload for _, _, payload in chunk], key)
            for (number, attendee_id, _), code in zip(chunk, codes, strict=True):
                self.issued[number] = attendee_id, code
            if progress:
                progress("signing", min(start + CHUNK_SIZE, len(unsigned)), len(unsigned))


def _new_row(row: _Valid, tickets: _Tickets, seq: int, now: datetime) -> dict[str, Any]:
    attendee_id, qr = tickets.issued[row.number]
    return {
        **{name: row.values[name] for name in COMPARED},
        "id": attendee_id,
        "event_id": tickets.event.id,
        "email_norm": row.values["email_norm"],
        "qr": qr,
        "source": AttendeeSource.IMPORT.value,
        "state": {},
        "entries": 0,
        "last_scan_at": None,
        "seq": seq,
        "created_at": now,
        "updated_at": now,
    }


def _changed_row(
    merged: dict[str, Any], current: dict[str, Any], tickets: _Tickets, seq: int, now: datetime
) -> dict[str, Any]:
    qr = merged["qr"]
    if any(merged[name] != current[name] for name in QR_INPUTS):
        qr = tickets.qr(merged["id"], merged)
    return {
        "b_id": merged["id"],
        **{name: merged[name] for name in COMPARED},
        "email_norm": merged["email_norm"],
        "qr": qr,
        "seq": seq,
        "updated_at": now,
    }


def _write(
    session: Session, plan: _Plan, snapshot: _Snapshot, tickets: _Tickets, options: ImportOptions
) -> None:
    total, size, now = len(plan.creates) + len(plan.updates), options.chunk_size, utcnow()
    if not total:
        return
    last = bump_seq(session, tickets.event.id, total)
    seqs = iter(range(last - total + 1, last + 1))
    org = tickets.event.organization_id
    subs = outbox.subscribers(session.connection(), org) if plan.creates else []
    for start in range(0, len(plan.creates), size):
        chunk = plan.creates[start : start + size]
        created = [_new_row(row, tickets, next(seqs), now) for row in chunk]
        session.execute(insert(_TABLE), created)
        announce_registered(session, org, tickets.event.id, created, subs)
        if options.progress:
            options.progress("writing", start + len(chunk), total)
    statement = update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
    for start in range(0, len(plan.updates), size):
        merged = plan.updates[start : start + size]
        session.execute(
            statement,
            [
                _changed_row(m, snapshot.attendees[m["id"]], tickets, next(seqs), now)
                for m in merged
            ],
        )
        if options.progress:
            options.progress("writing", len(plan.creates) + start + len(merged), total)


def _refuse_if_atomic(plan: _Plan, rows: int, options: ImportOptions) -> None:
    if plan.errors and options.atomic:
        raise _invalid(
            f"{plan.failed()} of {rows} rows have errors; nothing was imported",
            [e.detail() for e in plan.errors[:MAX_REPORTED_ERRORS]],
        )


def import_attendees(
    session: Session,
    *,
    event: Event,
    rows: Sequence[SourceRow],
    secret: bytes,
    options: ImportOptions | None = None,
) -> ImportResult:
    """Upsert `rows` into `event` by email (any case) or code, in one write transaction; commits.

    Rows are validated and new tickets signed before the write lock is taken (door scans keep
    flowing meanwhile); under the lock, changes made since are folded in and the rows written.
    A bad row is reported and skipped; with `options.atomic` any bad row means nothing is
    written and a 422 `ApiError` carries the row errors.
    """
    options = options or ImportOptions()
    event = Event(**event.model_dump())  # a detached copy: the caller's transaction ends here
    session.commit()
    snapshot = _snapshot(session, event.id)
    valid, errors = _validate_all(rows, snapshot.types, options.progress)
    plan = _plan(valid, errors, snapshot.attendees)
    _refuse_if_atomic(plan, len(rows), options)
    tickets = _Tickets(event, snapshot.types, secret)
    tickets.issue(plan.creates, options.progress)
    try:
        if _lock_and_refresh(session, event.id, snapshot):
            plan = _plan(valid, errors, snapshot.attendees)
            _refuse_if_atomic(plan, len(rows), options)
            tickets.issue(plan.creates, None)
        _write(session, plan, snapshot, tickets, options)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise conflict(
            "Another change to this event's attendees collided with the import; "
            "nothing was imported, try again"
        ) from exc
    except BaseException:
        session.rollback()
        raise
    return ImportResult(
        len(plan.creates), len(plan.updates), plan.unchanged, plan.failed(), plan.errors
    )
