"""Device pushes: offline readings and door registrations, each idempotent by its client id.

Offline readings are facts: a person a device admitted is inside, whatever the rules say now. The
server records each reading, decides it again with `shared.decide` on the attendee's timeline
before it (device clocks corrected), re-folds the timeline, and opens a conflict when the device
admitted someone the server would have denied.

Readings are applied in groups: one query per kind of row for the whole group (duplicates,
codes, attendees, timelines, zones), the decisions in Python, then bulk writes, and one commit. A
crash never leaves half an item: a group is all or nothing, and a retry answers `duplicate` for
every item a committed group holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlmodel import Session

from shared import ids
from shared.rules import (
    AttendeeStatus,
    CheckpointDirection,
    Direction,
    Reading,
    Reason,
    ScanInput,
    Status,
    Verdict,
    ZoneOccupancy,
    decide,
    effective_direction,
    replay,
    replay_with_deltas,
)
from shared.sync import ItemStatus, PushRequest, RegistrationItem, ScanItem, history_to_state
from shared.tickets import (
    InvalidSignature,
    MalformedCode,
    decode_ticket,
    is_signed_code,
    normalize_code,
    public_key_from_b64,
    verify_ticket,
)
from sync_server.db import utcnow
from sync_server.models import Attendee, Checkpoint, DoorRegistration, Event, Scan, Zone
from sync_server.models.people import AttendeeCreate, AttendeeSource
from sync_server.services.attendees import create_attendee_row
from sync_server.services.conflicts import open_conflict
from sync_server.services.events import bump_seq
from sync_server.services.scanning import (
    ATTENDEE_WITH_TYPE,
    policy_of,
    stored_code,
    ticket_of,
    ticket_type_ref,
    type_view,
)
from sync_server.webhooks import messages, outbox

__all__ = ["GROUP_SIZE", "PushContext", "push_batch", "registration_attendee_id"]

registration_attendee_id = ids.registration_attendee_id

GROUP_SIZE = 1000
IN_CHUNK = 500  # bound parameters per IN (...) list
SCANS: Table = Scan.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = Checkpoint.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
REGISTRATIONS: Table = DoorRegistration.__table__  # type: ignore[assignment]


@dataclass
class PushContext:
    organization_id: str
    device_id: str
    clock_offset_ms: int
    secret: bytes
    events: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    digests: dict[str, Any] = field(default_factory=dict)
    subs: list[outbox.Subscriber] = field(default_factory=list)  # of the current transaction


def _result(item_id: str, status: ItemStatus, **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "status": status.value,
        "server_verdict": None,
        "conflict_id": None,
        "attendee_id": None,
        "error": None,
        **extra,
    }


def _rejected(item_id: Any, error: str) -> dict[str, Any]:
    return _result(
        str(item_id)[:64] if item_id is not None else "", ItemStatus.REJECTED, error=error
    )


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}"[:300]


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


def _event(conn: Connection, ctx: PushContext, event_id: str) -> Any:
    if event_id not in ctx.events:
        ctx.events[event_id] = conn.execute(select(EVENTS).where(EVENTS.c.id == event_id)).first()
    row = ctx.events[event_id]
    return row if row is not None and row.organization_id == ctx.organization_id else None


def _checkpoint(conn: Connection, ctx: PushContext, checkpoint_id: str) -> Any:
    if checkpoint_id not in ctx.checkpoints:
        ctx.checkpoints[checkpoint_id] = conn.execute(
            select(CHECKPOINTS).where(CHECKPOINTS.c.id == checkpoint_id)
        ).first()
    return ctx.checkpoints[checkpoint_id]


def _event_by_digest(conn: Connection, ctx: PushContext, digest: str) -> Any:
    if digest not in ctx.digests:
        ctx.digests[digest] = conn.execute(
            select(EVENTS.c.id, EVENTS.c.ticket_public_key).where(
                EVENTS.c.key_digest == digest, EVENTS.c.organization_id == ctx.organization_id
            )
        ).first()
    return ctx.digests[digest]


def push_batch(session: Session, ctx: PushContext, request: PushRequest) -> list[dict[str, Any]]:
    """Apply every item of a batch; registrations first, so walk-ins' admissions resolve."""
    if request.registrations:
        ctx.subs = outbox.subscribers(session.connection(), ctx.organization_id)
    results = [_apply_registration(session, ctx, raw) for raw in request.registrations]
    session.commit()
    for start in range(0, len(request.scans), GROUP_SIZE):
        ctx.subs = outbox.subscribers(session.connection(), ctx.organization_id)
        results += ScanGroup(session, ctx, request.scans[start : start + GROUP_SIZE]).apply()
        session.commit()
    return results


@dataclass
class _Pending:
    """One valid, new reading of the group on its way through resolution and decision."""

    item: ScanItem
    event: Any
    checkpoint: Any
    direction: Direction
    ordered_at: datetime
    code: str | None = None
    attendee_id: str | None = None
    signed: bool = False
    error: Reason | None = None
    result: dict[str, Any] = field(default_factory=dict)


class ScanGroup:
    """Up to GROUP_SIZE readings applied together in one transaction."""

    def __init__(self, session: Session, ctx: PushContext, raws: list[Any]) -> None:
        self.session, self.ctx, self.conn = session, ctx, session.connection()
        self.raws = raws
        self.results: list[dict[str, Any] | _Pending | _Copy] = []

    def apply(self) -> list[dict[str, Any]]:
        pending = self._validate()
        self._resolve(pending)
        rows = self._attendees(pending)
        self._authenticate(pending, rows)
        timelines = self._timelines(list(rows))
        self._decide(pending, rows, timelines)
        return [_final(r) for r in self.results]

    # -- 1. parse, dedupe, check references ----------------------------------------------------
    def _validate(self) -> list[_Pending]:
        items: list[ScanItem | dict[str, Any]] = []
        for raw in self.raws:
            try:
                items.append(ScanItem.model_validate(raw))
            except ValidationError as exc:
                items.append(
                    _rejected(raw.get("id") if isinstance(raw, dict) else None, _short(exc))
                )
        known = self._known([item.id for item in items if isinstance(item, ScanItem)])
        seen: dict[str, _Pending | dict[str, Any]] = {}
        pending: list[_Pending] = []
        for item in items:
            if not isinstance(item, ScanItem):
                self.results.append(item)
            elif item.id in known:
                self.results.append(known[item.id])
            elif item.id in seen:  # the same id twice in one batch: the copy answers `duplicate`
                self.results.append(_Copy(seen[item.id]))
            else:
                entry = seen[item.id] = self._pending(item)
                self.results.append(entry)
                if isinstance(entry, _Pending):
                    pending.append(entry)
        return pending

    def _known(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        known: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(item_ids):
            for row in self.conn.execute(
                select(SCANS.c.id, SCANS.c.event_id, SCANS.c.result).where(SCANS.c.id.in_(chunk))
            ):
                if _event(self.conn, self.ctx, row.event_id) is None:
                    known[row.id] = _rejected(row.id, "this id is already used")
                else:
                    known[row.id] = {
                        **_result(row.id, ItemStatus.DUPLICATE),
                        **(row.result or {}),
                        "status": ItemStatus.DUPLICATE.value,
                    }
        return known

    def _pending(self, item: ScanItem) -> _Pending | dict[str, Any]:
        event = _event(self.conn, self.ctx, item.event_id)
        checkpoint = _checkpoint(self.conn, self.ctx, item.checkpoint_id)
        if event is None or checkpoint is None or checkpoint.event_id != event.id:
            return _rejected(item.id, "unknown event or checkpoint")
        try:
            direction = effective_direction(
                CheckpointDirection(checkpoint.direction), item.direction
            )
        except ValueError as exc:
            return _rejected(item.id, str(exc))
        ordered_at = item.scanned_at - timedelta(milliseconds=self.ctx.clock_offset_ms)
        return _Pending(item, event, checkpoint, direction, ordered_at)

    # -- 2. codes to attendees -----------------------------------------------------------------
    def _resolve(self, pending: list[_Pending]) -> None:
        custom: dict[str, list[_Pending]] = defaultdict(list)
        for p in pending:
            try:
                p.code = normalize_code(p.item.code)
            except MalformedCode:
                p.error = Reason.MALFORMED_CODE
                continue
            if p.item.manual and p.code.startswith(f"{ids.ATTENDEE}_"):
                p.attendee_id = p.code
            elif is_signed_code(p.code):
                try:
                    p.attendee_id, p.signed = decode_ticket(p.code).payload.attendee_id, True
                except MalformedCode:
                    p.error = Reason.MALFORMED_CODE
            else:
                custom[p.code].append(p)
        for chunk in _chunks(list(custom)):
            matches: dict[str, list[Any]] = defaultdict(list)
            for row in self.conn.execute(
                select(ATTENDEES.c.id, ATTENDEES.c.event_id, ATTENDEES.c.code)
                .join(EVENTS, EVENTS.c.id == ATTENDEES.c.event_id)
                .where(
                    ATTENDEES.c.code.in_(chunk),
                    EVENTS.c.organization_id == self.ctx.organization_id,
                )
            ):
                matches[row.code].append(row)
            for code in chunk:
                for p in custom[code]:
                    rows = sorted(matches.get(code, []), key=lambda r: r.event_id != p.event.id)
                    p.attendee_id = rows[0].id if rows else None
                    p.error = None if rows else Reason.UNKNOWN_CODE

    def _attendees(self, pending: list[_Pending]) -> dict[str, Any]:
        wanted = sorted({p.attendee_id for p in pending if p.attendee_id})
        rows: dict[str, Any] = {}
        for chunk in _chunks(wanted):
            query = (
                ATTENDEE_WITH_TYPE.where(ATTENDEES.c.id.in_(chunk))
                .order_by(ATTENDEES.c.id)
                .with_for_update(of=ATTENDEES)
            )
            rows.update({row.id: row for row in self.conn.execute(query)})
        return rows

    def _authenticate(self, pending: list[_Pending], rows: dict[str, Any]) -> None:
        """A signed code that is exactly the ticket we issued needs no signature check; any other
        is verified against its event's key (this event's, or another's of the organization)."""
        for p in pending:
            if not p.signed or p.error is not None or p.code is None:
                continue
            row = rows.get(p.attendee_id or "")
            if row is not None and row.qr == p.code:
                continue
            digest = decode_ticket(p.code).payload.event_digest.hex()
            owner = (
                p.event
                if digest == p.event.key_digest
                else _event_by_digest(self.conn, self.ctx, digest)
            )
            try:
                if owner is None:
                    raise InvalidSignature("no such event")
                verify_ticket(p.code, public_key_from_b64(owner.ticket_public_key))
            except InvalidSignature:
                p.attendee_id, p.error = None, Reason.INVALID_SIGNATURE
            except MalformedCode:
                p.attendee_id, p.error = None, Reason.MALFORMED_CODE

    def _timelines(self, attendee_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        timelines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for chunk in _chunks(sorted(attendee_ids)):
            for row in self.conn.execute(
                select(
                    SCANS.c.id,
                    SCANS.c.attendee_id,
                    SCANS.c.checkpoint_id,
                    SCANS.c.zone_id,
                    SCANS.c.direction,
                    SCANS.c.status,
                    SCANS.c.scanned_at,
                    SCANS.c.ordered_at,
                    SCANS.c.device_id,
                    SCANS.c.hlc,
                    SCANS.c.occupancy_delta,
                    SCANS.c.conflict_id,
                ).where(SCANS.c.attendee_id.in_(chunk), SCANS.c.voided.is_(False))
            ):
                timelines[row.attendee_id].append({**row._mapping, "new": False})
        return timelines

    # -- 3. decide, record, re-fold ------------------------------------------------------------
    def _decide(
        self,
        pending: list[_Pending],
        rows: dict[str, Any],
        timelines: dict[str, list[dict[str, Any]]],
    ) -> None:
        zones = self._zones({p.checkpoint.zone_id for p in pending if p.checkpoint.zone_id})
        zones_before = dict(zones)
        applied: list[tuple[_Pending, dict[str, Any], Any]] = []
        new_rows: list[dict[str, Any]] = []
        touched: dict[str, str] = {}
        now = utcnow()
        for p in pending:
            row = rows.get(p.attendee_id or "")
            own = row is not None and row.event_id == p.event.id
            timeline = timelines[row.id] if row is not None else []
            verdict = self._verdict(p, row, timeline, zones)
            admitted = p.item.device_verdict.status is Status.ACCEPTED
            if admitted and verdict.accepted and p.checkpoint.zone_id:
                zones[p.checkpoint.zone_id] = replace(
                    zones[p.checkpoint.zone_id],
                    occupancy=zones[p.checkpoint.zone_id].occupancy + verdict.occupancy_delta,
                )
            conflict_id = None
            if admitted and not verdict.accepted and verdict.reason is not Reason.DUPLICATE_SCAN:
                conflict_id = self._conflict(p, verdict, row.id if own and row else None, timeline)
            record = {
                "id": p.item.id,
                "event_id": p.event.id,
                "checkpoint_id": p.checkpoint.id,
                "zone_id": p.checkpoint.zone_id,
                "attendee_id": row.id if own and row else None,
                "code": stored_code(p.item.code),
                "direction": p.direction.value,
                "status": (Status.ACCEPTED if admitted else Status.DENIED).value,
                "reason": Reason.OK.value if admitted else p.item.device_verdict.reason.value,
                "warnings": [w.value for w in verdict.warnings] if admitted else [],
                "occupancy_delta": 0,
                "voided": False,
                "scanned_at": p.item.scanned_at,
                "ordered_at": p.ordered_at,
                "received_at": now,
                "device_id": self.ctx.device_id,
                "operator": p.item.operator,
                "offline": True,
                "manual": p.item.manual,
                "hlc": p.item.hlc,
                "device_status": p.item.device_verdict.status.value,
                "device_reason": p.item.device_verdict.reason.value,
                "conflict_id": conflict_id,
            }
            p.result = _result(
                p.item.id,
                ItemStatus.APPLIED,
                conflict_id=conflict_id,
                attendee_id=record["attendee_id"],
                server_verdict={
                    "status": verdict.status.value,
                    "reason": verdict.reason.value,
                    "warnings": [w.value for w in verdict.warnings],
                },
            )
            record["result"] = p.result
            new_rows.append(record)
            applied.append((p, record, row if own else None))
            if record["attendee_id"]:
                timeline.append({**record, "new": True})
                touched[row.id] = p.event.id  # type: ignore[union-attr]
                if admitted and verdict.accepted and conflict_id is None:
                    self._later_double_admission(p, row, timeline, new_rows)
        if new_rows:
            self.conn.execute(insert(SCANS), new_rows)
        zone_changes = self._refold(touched, timelines, new_rows)
        if self.ctx.subs and applied:
            self._announce(applied, zones_before, zone_changes)

    def _announce(
        self,
        applied: list[tuple[_Pending, dict[str, Any], Any]],
        zones_before: dict[str, ZoneOccupancy],
        zone_changes: dict[str, int],
    ) -> None:
        """Queue `checkin.*` for every applied reading (offline: true) and
        `zone.capacity_reached` for zones the group filled, in the group's transaction."""
        subs, conn = self.ctx.subs, self.conn
        wanted = [
            (p, record, row)
            for p, record, row in applied
            if outbox.wanted(subs, f"checkin.{record['status']}", p.event.id)
        ]
        full = [
            (zone_id, zones_before[zone_id])
            for zone_id, change in sorted(zone_changes.items())
            if change > 0
            and zone_id in zones_before
            and zones_before[zone_id].capacity is not None
            and zones_before[zone_id].occupancy
            < (zones_before[zone_id].capacity or 0)
            <= zones_before[zone_id].occupancy + change
        ]
        if not wanted and not full:
            return
        device = messages.device_ref(conn, self.ctx.device_id)
        events = {e.id: {"id": e.id, "name": e.name} for e in self.ctx.events.values() if e}
        zone_names: dict[str, dict[str, Any] | None] = {}

        def zone(zone_id: str | None) -> dict[str, Any] | None:
            if zone_id is not None and zone_id not in zone_names:
                zone_names[zone_id] = messages.zone_ref(conn, zone_id)
            return zone_names.get(zone_id) if zone_id else None

        items = [
            outbox.Emission(
                p.event.id,
                f"checkin.{record['status']}",
                messages.checkin_data(
                    scan=record,
                    event=events[p.event.id],
                    checkpoint=p.checkpoint,
                    zone=zone(record["zone_id"]),
                    attendee=(
                        messages.attendee_data(row, ticket_type_ref(row))
                        if row is not None
                        else None
                    ),
                    device=device,
                ),
            )
            for p, record, row in wanted
        ]
        checkpoint_events = {p.checkpoint.zone_id: p.event.id for p, _, _ in applied}
        for zone_id, before in full:
            event_id = checkpoint_events[zone_id]
            ref = zone(zone_id) or {"id": zone_id, "name": None}
            capacity = before.capacity or 0
            data = messages.zone_full_data(events[event_id], ref, capacity, capacity, utcnow())
            items.append(outbox.Emission(event_id, "zone.capacity_reached", data))
        outbox.emit_many(conn, subs, organization_id=self.ctx.organization_id, items=items)

    def _zones(self, zone_ids: set[str]) -> dict[str, ZoneOccupancy]:
        if not zone_ids:
            return {}
        rows = self.conn.execute(
            select(ZONES.c.id, ZONES.c.capacity, ZONES.c.occupancy)
            .where(ZONES.c.id.in_(sorted(zone_ids)))
            .order_by(ZONES.c.id)
            .with_for_update()
        )
        return {z.id: ZoneOccupancy(z.capacity, z.occupancy) for z in rows}

    def _verdict(
        self, p: _Pending, row: Any, timeline: list[dict[str, Any]], zones: dict[str, ZoneOccupancy]
    ) -> Verdict:
        """What the server would have answered at the reading's corrected time."""
        return _decide_at(
            p.checkpoint,
            p.direction,
            (p.ordered_at, p.item.hlc, p.item.id),
            row,
            timeline,
            zone=zones.get(p.checkpoint.zone_id) if p.checkpoint.zone_id else None,
            error=p.error,
        )

    def _later_double_admission(
        self,
        p: _Pending,
        row: Any,
        timeline: list[dict[str, Any]],
        new_rows: list[dict[str, Any]],
    ) -> None:
        """An earlier entry that reaches the server after a later one (gates push in any order):
        if the later admission into the same zone now follows it with no way out between, the
        ticket went in twice. Open the conflict on the later reading, as if it had come last."""
        if not p.checkpoint.zone_id:
            return
        key = (p.ordered_at, p.item.hlc, p.item.id)
        following = sorted(
            (
                r
                for r in timeline
                if _order(r) > key
                and r["zone_id"] == p.checkpoint.zone_id
                and r["status"] == Status.ACCEPTED
            ),
            key=_order,
        )
        later = following[0] if following else None
        if later is None or later["direction"] != Direction.IN or later.get("conflict_id"):
            return
        checkpoint = _checkpoint(self.conn, self.ctx, later["checkpoint_id"])
        if checkpoint is None:
            return
        verdict = _decide_at(checkpoint, Direction.IN, _order(later), row, timeline)
        if verdict.reason is not Reason.ALREADY_INSIDE:
            return
        at = later["ordered_at"] or later["scanned_at"]
        conflict_id = open_conflict(
            self.conn,
            organization_id=self.ctx.organization_id,
            event_id=p.event.id,
            kind=verdict.reason.value,
            subs=self.ctx.subs,
            scan_ids=[later["id"], p.item.id],
            attendee_ids=[row.id],
            details={
                "device_id": later["device_id"],
                "checkpoint_id": later["checkpoint_id"],
                "server_reason": verdict.reason.value,
                "scanned_at": at.isoformat(),
                "found_when": "an earlier reading arrived after it",
            },
        )
        later["conflict_id"] = conflict_id
        if later.get("new"):  # pushed in this same batch: not written yet
            for record in new_rows:
                if record["id"] == later["id"]:
                    record["conflict_id"] = conflict_id
        else:
            self.conn.execute(
                update(SCANS).where(SCANS.c.id == later["id"]).values(conflict_id=conflict_id)
            )

    def _conflict(
        self, p: _Pending, verdict: Verdict, attendee_id: str | None, timeline: list[dict[str, Any]]
    ) -> str:
        entries = sorted(
            (
                r
                for r in timeline
                if r["status"] == Status.ACCEPTED
                and r["direction"] == Direction.IN
                and r["zone_id"] == p.checkpoint.zone_id
            ),
            key=_order,
        )
        related = [entries[-1]["id"]] if entries else []
        return open_conflict(
            self.conn,
            organization_id=self.ctx.organization_id,
            event_id=p.event.id,
            kind=verdict.reason.value,
            subs=self.ctx.subs,
            scan_ids=[p.item.id, *related],
            attendee_ids=[attendee_id] if attendee_id else [],
            details={
                "device_id": self.ctx.device_id,
                "checkpoint_id": p.checkpoint.id,
                "server_reason": verdict.reason.value,
                "scanned_at": p.item.scanned_at.isoformat(),
            },
        )

    def _refold(
        self,
        touched: dict[str, str],
        timelines: dict[str, list[dict[str, Any]]],
        new_rows: list[dict[str, Any]],
    ) -> dict[str, int]:
        """Re-decide presence for every attendee the group touched, and write it all back;
        answers how much each zone's occupancy changed."""
        by_event: dict[str, list[str]] = defaultdict(list)
        for attendee_id, event_id in touched.items():
            by_event[event_id].append(attendee_id)
        delta_updates: list[dict[str, Any]] = []
        zone_changes: dict[str, int] = defaultdict(int)
        attendee_updates: list[dict[str, Any]] = []
        for event_id, attendee_ids in by_event.items():
            last = bump_seq(self.session, event_id, len(attendee_ids))
            for seq, attendee_id in enumerate(attendee_ids, start=last - len(attendee_ids) + 1):
                timeline = sorted(timelines[attendee_id], key=_order)
                history, deltas = replay_with_deltas(_reading(r) for r in timeline)
                for reading, delta in zip(timeline, deltas, strict=True):
                    if delta != reading["occupancy_delta"]:
                        if reading["zone_id"]:
                            zone_changes[reading["zone_id"]] += delta - reading["occupancy_delta"]
                        if reading["new"]:
                            reading["occupancy_delta"] = delta
                        else:
                            delta_updates.append({"b_id": reading["id"], "b_delta": delta})
                accepted = [r for r in timeline if r["status"] == Status.ACCEPTED]
                attendee_updates.append(
                    {
                        "b_id": attendee_id,
                        "b_state": history_to_state(history),
                        "b_entries": sum(1 for r in accepted if r["direction"] == Direction.IN),
                        "b_last": max((r["scanned_at"] for r in accepted), default=None),
                        "b_seq": seq,
                    }
                )
        for record in new_rows:  # new readings were inserted with delta 0
            delta = next(
                (
                    r["occupancy_delta"]
                    for r in timelines.get(record["attendee_id"] or "", [])
                    if r["id"] == record["id"]
                ),
                0,
            )
            if delta:
                delta_updates.append({"b_id": record["id"], "b_delta": delta})
        if delta_updates:
            self.conn.execute(
                update(SCANS)
                .where(SCANS.c.id == bindparam("b_id"))
                .values(occupancy_delta=bindparam("b_delta")),
                delta_updates,
            )
        if attendee_updates:
            self.conn.execute(
                update(ATTENDEES)
                .where(ATTENDEES.c.id == bindparam("b_id"))
                .values(
                    state=bindparam("b_state"),
                    entries=bindparam("b_entries"),
                    last_scan_at=bindparam("b_last"),
                    seq=bindparam("b_seq"),
                ),
                attendee_updates,
            )
        for zone_id, change in sorted(zone_changes.items()):
            if change:
                self.conn.execute(
                    update(ZONES)
                    .where(ZONES.c.id == zone_id)
                    .values(occupancy=ZONES.c.occupancy + change)
                )
        return zone_changes


@dataclass(frozen=True, slots=True)
class _Copy:
    first: _Pending | dict[str, Any]


def _final(entry: _Pending | _Copy | dict[str, Any]) -> dict[str, Any]:
    if isinstance(entry, _Pending):
        return entry.result
    if isinstance(entry, _Copy):
        first = _final(entry.first)
        return first if first["status"] == ItemStatus.REJECTED else {**first, "status": "duplicate"}
    return entry


def _decide_at(
    checkpoint: Any,
    direction: Direction,
    key: tuple[Any, ...],
    row: Any,
    timeline: list[dict[str, Any]],
    *,
    zone: ZoneOccupancy | None = None,
    error: Reason | None = None,
) -> Verdict:
    """`decide` for a reading at `key` (its `_order`) on the attendee's timeline before it, with
    the ticket's status as it was then (a ticket revoked after the reading was still valid)."""
    at = key[0]
    ticket = ticket_of(row, row.event_id, type_view(row)) if row is not None else None
    if ticket is not None and ticket.status is not AttendeeStatus.VALID:
        changed = row.status_changed_at
        if changed is not None and changed > at:  # revoked only after this reading
            ticket = replace(ticket, status=AttendeeStatus.VALID)
    before = sorted((r for r in timeline if _order(r) < key), key=_order)
    return decide(
        ScanInput(
            policy_of(checkpoint),
            at,
            direction,
            ticket=ticket,
            code_error=error or (None if ticket else Reason.UNKNOWN_CODE),
            history=replay(_reading(r) for r in before),
            zone=zone,
        )
    )


def _order(r: dict[str, Any] | tuple[Any, ...]) -> tuple[Any, ...]:
    if isinstance(r, tuple):
        return r
    return (r["ordered_at"] or r["scanned_at"], r["hlc"] or "", r["id"])


def _reading(r: dict[str, Any]) -> Reading:
    return Reading(
        r["checkpoint_id"],
        r["zone_id"] or f"cp:{r['checkpoint_id']}",
        Direction(r["direction"]),
        Status(r["status"]),
        r["ordered_at"] or r["scanned_at"],
        r["device_id"],
    )


def _apply_registration(session: Session, ctx: PushContext, raw: Any) -> dict[str, Any]:
    conn = session.connection()
    try:
        item = RegistrationItem.model_validate(raw)
    except ValidationError as exc:
        return _rejected(raw.get("id") if isinstance(raw, dict) else None, _short(exc))
    known = conn.execute(
        select(REGISTRATIONS.c.event_id, REGISTRATIONS.c.result).where(
            REGISTRATIONS.c.id == item.id
        )
    ).first()
    if known is not None:
        if _event(conn, ctx, known.event_id) is None:
            return _rejected(item.id, "this id is already used")
        return {**known.result, "status": ItemStatus.DUPLICATE.value}
    event = _event(conn, ctx, item.event_id)
    if event is None:
        return _rejected(item.id, "unknown event")
    attendee_id = registration_attendee_id(item.id)
    email = item.email.strip().lower() if item.email else None
    existing = None
    if email:
        existing = conn.execute(
            select(ATTENDEES.c.id).where(
                ATTENDEES.c.event_id == event.id, ATTENDEES.c.email_norm == email
            )
        ).first()
    if existing is not None:
        conflict_id = open_conflict(
            conn,
            organization_id=ctx.organization_id,
            event_id=event.id,
            kind="duplicate_registration",
            scan_ids=[],
            attendee_ids=[existing.id],
            registration_id=item.id,
            subs=ctx.subs,
            details={
                "device_id": ctx.device_id,
                "email": item.email,
                "first_name": item.first_name,
                "last_name": item.last_name,
            },
        )
        result = _result(
            item.id, ItemStatus.APPLIED, conflict_id=conflict_id, attendee_id=existing.id
        )
    else:
        try:
            data = AttendeeCreate(
                first_name=item.first_name,
                last_name=item.last_name,
                email=item.email,
                ticket_type=item.ticket_type,
                tags=item.tags,
            )
        except ValidationError as exc:
            return _rejected(item.id, _short(exc))
        error = create_attendee_row(
            session,
            event_id=event.id,
            data=data,
            source=AttendeeSource.DOOR,
            secret=ctx.secret,
            attendee_id=attendee_id,
            subs=ctx.subs,
        )
        if error is not None:
            return _rejected(item.id, error)
        result = _result(item.id, ItemStatus.APPLIED, attendee_id=attendee_id)
    conn.execute(
        insert(REGISTRATIONS).values(
            id=item.id,
            event_id=event.id,
            device_id=ctx.device_id,
            attendee_id=result["attendee_id"],
            payload=item.model_dump(mode="json"),
            result=result,
            created_at=item.created_at,
            received_at=utcnow(),
        )
    )
    return result
