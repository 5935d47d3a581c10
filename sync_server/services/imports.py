"""Attendee imports (SPEC section 4): upsert the planned rows by email or code in bulk, in one
transaction, with new tickets signed before the write lock is taken.

    result = import_attendees(session, event=event, rows=rows, secret=secret)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from shared import ids
from shared.tickets import TicketPayload, issue_tickets
from sync_server.db import utcnow
from sync_server.models import Attendee, AttendeeTombstone, Event, TicketType
from sync_server.models.base import new_id
from sync_server.models.people import AttendeeSource
from sync_server.services.attendees import announce_registered, issue_qr, ticket_payload
from sync_server.services.events import bump_seq, conflict, event_private_key
from sync_server.services.import_plan import (
    CHUNK_SIZE,
    COMPARED,
    Plan,
    Progress,
    Valid,
    plan_rows,
    validate_rows,
)
from sync_server.services.import_upload import RowError, SourceRow, invalid
from sync_server.webhooks import outbox

__all__ = ["ImportOptions", "ImportResult", "import_attendees"]

MAX_REPORTED_ERRORS = 1_000
QR_INPUTS = ("code", "ticket_type_id", "valid_from", "valid_until")
_TABLE: Table = Attendee.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    lines: dict[int, int] = field(default_factory=dict)  # row number -> its first file line
    warnings: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """The answer body; `errors` stops at the first 1,000 (`failed` counts every bad row)."""
        return {
            "object": "import_result",
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "errors": [e.public(self.lines.get(e.row)) for e in self.errors[:MAX_REPORTED_ERRORS]],
            "warnings": self.warnings[:MAX_REPORTED_ERRORS],
        }


@dataclass(frozen=True, slots=True)
class ImportOptions:
    atomic: bool = False
    chunk_size: int = CHUNK_SIZE
    progress: Progress | None = None


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

    def issue(self, rows: list[Valid], progress: Progress | None) -> None:
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


def _new_row(row: Valid, tickets: _Tickets, seq: int, now: datetime) -> dict[str, Any]:
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
    session: Session, plan: Plan, snapshot: _Snapshot, tickets: _Tickets, options: ImportOptions
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


def _refuse_if_atomic(plan: Plan, rows: int, options: ImportOptions) -> None:
    if plan.errors and options.atomic:
        raise invalid(
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
    valid, errors = validate_rows(rows, snapshot.types, options.progress)
    plan = plan_rows(valid, errors, snapshot.attendees)
    _refuse_if_atomic(plan, len(rows), options)
    tickets = _Tickets(event, snapshot.types, secret)
    tickets.issue(plan.creates, options.progress)
    try:
        if _lock_and_refresh(session, event.id, snapshot):
            plan = plan_rows(valid, errors, snapshot.attendees)
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
    lines = {r.number: r.line for r in rows if r.line is not None}
    notes = [_note(n, lines.get(n.row)) for n in plan.notes]
    return ImportResult(
        len(plan.creates),
        len(plan.updates),
        plan.unchanged,
        plan.failed(),
        plan.errors,
        lines,
        notes,
    )


def _note(note: RowError, line: int | None) -> str:
    where = f"row {note.row}" + (f" (line {line})" if line else "")
    return f"{where}, {note.field}: {note.message}"
