"""Pushed readings, a group at a time (one transaction): load what the group needs with one query
per kind of row, decide each reading at its place in its attendee's timeline (`shared.timeline`,
device clocks corrected), then write the readings and the re-decided timelines and queue the
webhooks. Offline readings are facts: a person a device admitted is inside, whatever the rules
say now; where the rules deny an admission, a conflict opens.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Table, insert, select
from sqlmodel import Session

from shared.conflicts import kind_of
from shared.policy import CheckpointPolicy, ZoneOccupancy
from shared.resolution import ReadCode, Resolved, read_code, resolve
from shared.rules import (
    CheckpointDirection,
    Direction,
    Reason,
    Status,
    Verdict,
    WrongDirection,
    effective_direction,
)
from shared.sync import ItemResult, ItemStatus, ScanItem, ServerVerdict, WireError, decode_item
from shared.sync import to_builtins as builtins
from shared.timeline import Placed, TimedReading, decide_at, place, redecide, with_zone
from sync_server.db import utcnow
from sync_server.models import Scan, Zone
from sync_server.services.conflicts import Reconcile, open_conflict
from sync_server.services.lookups import row_ticket
from sync_server.services.push_announce import announce_group
from sync_server.services.push_facts import Facts, load_facts
from sync_server.services.push_items import (
    PushContext,
    duplicate_of,
    override_columns,
    override_problem,
    raw_id,
    rejected,
    wire_error,
)
from sync_server.services.scanning import stored_code
from sync_server.services.timeline import Policies, Refold, chunks, last_entry, write_refolds

__all__ = ["Pending", "ScanGroup"]

SCANS: Table = Scan.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
LATE = "an earlier reading arrived after it"


@dataclass
class Pending:
    """One valid, new reading of the group on its way through resolution and decision."""

    item: ScanItem
    event: Any
    checkpoint: Any
    policy: CheckpointPolicy
    direction: Direction
    ordered_at: datetime
    read: ReadCode
    found: Resolved | None = None
    row: Any = None  # the attendee when it is this event's
    verdict: Verdict | None = None
    conflict_id: str | None = None
    record: dict[str, Any] = field(default_factory=dict)
    result: ItemResult | None = None

    @property
    def admitted(self) -> bool:
        return self.item.device_verdict.status is Status.ACCEPTED

    def contested(self, verdict: Verdict) -> bool:
        """Whether the device admitted someone the rules deny here: a conflict, unless it was
        a supervisor's override (never a conflict by itself)."""
        if not self.admitted or verdict.accepted or self.item.override:
            return False
        return verdict.reason is not Reason.DUPLICATE_SCAN


@dataclass(frozen=True, slots=True)
class _Copy:
    """The same id twice in one batch: the copy answers `duplicate`."""

    first: Pending | ItemResult


class ScanGroup:
    """Up to GROUP_SIZE readings applied together in one transaction."""

    def __init__(self, session: Session, ctx: PushContext, raws: list[msgspec.Raw]) -> None:
        self.session, self.ctx, self.conn = session, ctx, session.connection()
        self.raws = raws
        self.policies = Policies(self.conn)
        self.results: list[ItemResult | Pending | _Copy] = []

    def apply(self) -> list[ItemResult]:
        pending = self._validate()
        facts = load_facts(self.conn, self.ctx.organization_id, [p.read for p in pending])
        lookups = facts.lookups
        for p in pending:
            p.found = resolve(p.read, p.event.id, lookups)
        facts.load_timelines(
            self.conn,
            self.policies,
            [(p.found.attendee_id, p.event.id, p.ordered_at) for p in pending if p.found],
        )
        self._decide(pending, facts)
        return [_final(r) for r in self.results]

    # -- 1. parse, dedupe, check references ----------------------------------------------------
    def _validate(self) -> list[Pending]:
        items: list[ScanItem | ItemResult] = []
        for raw in self.raws:
            try:
                items.append(decode_item(raw, ScanItem))
            except WireError as exc:
                items.append(rejected(raw_id(raw), wire_error(exc)))
        known = self._known([item.id for item in items if isinstance(item, ScanItem)])
        self.policies.load(item.checkpoint_id for item in items if isinstance(item, ScanItem))
        seen: dict[str, Pending | ItemResult] = {}
        pending: list[Pending] = []
        for item in items:
            if not isinstance(item, ScanItem):
                self.results.append(item)
            elif item.id in known:
                self.results.append(known[item.id])
            elif item.id in seen:
                self.results.append(_Copy(seen[item.id]))
            else:
                entry = seen[item.id] = self._pending(item)
                self.results.append(entry)
                if isinstance(entry, Pending):
                    pending.append(entry)
        return pending

    def _known(self, item_ids: list[str]) -> dict[str, ItemResult]:
        known: dict[str, ItemResult] = {}
        for chunk in chunks(item_ids):
            for row in self.conn.execute(
                select(SCANS.c.id, SCANS.c.event_id, SCANS.c.result).where(SCANS.c.id.in_(chunk))
            ):
                if self.ctx.event(self.conn, row.event_id) is None:
                    known[row.id] = rejected(row.id, "this id is already used")
                else:
                    known[row.id] = duplicate_of({"id": row.id, **(row.result or {})})
        return known

    def _pending(self, item: ScanItem) -> Pending | ItemResult:
        event = self.ctx.event(self.conn, item.event_id)
        checkpoint = self.policies.row(item.checkpoint_id)
        policy = self.policies.policy(item.checkpoint_id)
        if event is None or checkpoint is None or policy is None or checkpoint.event_id != event.id:
            return rejected(item.id, "unknown event or checkpoint")
        try:
            direction = effective_direction(
                CheckpointDirection(checkpoint.direction), item.direction
            )
        except WrongDirection as exc:
            return rejected(item.id, str(exc))
        try:
            ordered_at = item.scanned_at - timedelta(milliseconds=self.ctx.clock_offset_ms)
        except OverflowError:
            return rejected(
                item.id, "scanned_at is out of range once corrected by the device's clock offset"
            )
        problem = override_problem(item, direction)
        if problem is not None:
            return rejected(item.id, problem)
        read = read_code(item.code, manual=item.manual)
        return Pending(item, event, checkpoint, policy, direction, ordered_at, read)

    # -- 2. decide each at its place, then re-decide the timelines it touched -----------------
    def _decide(self, pending: list[Pending], facts: Facts) -> None:
        zones = self._zones({p.policy.zone_id for p in pending if p.policy.zone_id})
        zones_before = dict(zones)
        touched: dict[str, Any] = {}
        tickets = {row_id: row_ticket(row) for row_id, row in facts.rows.items()}
        news = {p.item.id: self._timed(p, facts) for p in pending}
        placed = self._place(pending, facts, news, tickets)
        for p in pending:
            new, row = news[p.item.id], p.row
            zone = zones.get(p.policy.zone_id) if p.policy.zone_id else None
            verdict = p.verdict = with_zone(
                placed[p.item.id],
                new,
                tickets.get(row.id) if row is not None else None,
                zone,
                changed_at=row.status_changed_at if row is not None else None,
            )
            assert verdict is not None
            if zone is not None and placed[p.item.id].delta:
                delta = placed[p.item.id].delta
                zones[p.policy.zone_id] = replace(zone, occupancy=zone.occupancy + delta)
            timeline = facts.timelines[row.id] if row is not None else []
            if p.contested(verdict):
                p.conflict_id = self._conflict(p, verdict, timeline)
                new = replace(new, conflict=kind_of(verdict.reason))
            p.record = self._record(p)
            if row is not None:
                timeline.append(new)
                touched[row.id] = row
        refolds = [
            Refold(
                attendee_id,
                row.event_id,
                redecide(
                    facts.timelines[attendee_id],
                    tickets[attendee_id],
                    base=facts.bases.get(attendee_id),
                    changed_at=row.status_changed_at,
                    since=min(r.order for r in facts.timelines[attendee_id] if r.new),
                ),
            )
            for attendee_id, row in touched.items()
        ]
        written = write_refolds(self.session, refolds)
        late: dict[str, str] = {}
        reconcile = Reconcile(self.conn, self.ctx.organization_id, self.ctx.subs)
        for refold in refolds:
            late.update(reconcile.apply(refold, why=LATE))
        seqs = {refold.attendee_id: refold.seq for refold in refolds}
        for p in pending:
            p.record["occupancy_delta"] = written.new_deltas.get(p.item.id, 0)
            p.conflict_id = p.conflict_id or late.get(p.item.id)
            p.record["conflict_id"] = p.conflict_id
            p.result = self._result(p, seqs.get(p.row.id) if p.row is not None else None)
            p.record["result"] = builtins(p.result)
        if pending:
            self.conn.execute(insert(SCANS), [p.record for p in pending])
        if self.ctx.subs and pending:
            announce_group(self.conn, self.ctx, pending, zones_before, written.zone_changes)

    def _timed(self, p: Pending, facts: Facts) -> TimedReading:
        """The reading as its attendee's timeline takes it (and `p.row`: the attendee, when it
        is an attendee of the event the reading was taken at)."""
        assert p.found is not None
        row = facts.rows.get(p.found.attendee_id or "")
        p.row = row if row is not None and row.event_id == p.event.id else None
        return TimedReading(
            id=p.item.id,
            checkpoint_id=p.policy.id,
            zone_id=p.policy.zone_id,
            direction=p.direction,
            status=p.item.device_verdict.status,
            at=p.ordered_at,
            order=(p.ordered_at, p.item.hlc, p.item.id),
            checkpoint=p.policy,
            device_id=self.ctx.device_id,
            new=True,
            override=p.item.override,
        )

    @staticmethod
    def _place(
        pending: list[Pending],
        facts: Facts,
        news: dict[str, TimedReading],
        tickets: dict[str, Any],
    ) -> dict[str, Placed]:
        """Each reading at its place: an attendee's new readings in one ordered pass over their
        timeline (linear however long it is); a code that names no attendee of the event alone."""
        by_attendee: dict[str, list[Pending]] = defaultdict(list)
        placed: dict[str, Placed] = {}
        for p in pending:
            if p.row is not None:
                by_attendee[p.row.id].append(p)
                continue
            assert p.found is not None
            ticket = tickets.get(p.found.attendee_id or "")
            placed[p.item.id] = decide_at([], news[p.item.id], ticket, code_error=p.found.error)
        for attendee_id, mine in by_attendee.items():
            row = mine[0].row
            placed |= place(
                facts.timelines[attendee_id],
                [news[p.item.id] for p in mine],
                tickets[attendee_id],
                base=facts.bases.get(attendee_id),
                changed_at=row.status_changed_at,
            )
        return placed

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

    def _conflict(self, p: Pending, verdict: Verdict, timeline: list[TimedReading]) -> str:
        here = (p.ordered_at, p.item.hlc, p.item.id)
        entries = sorted(
            (
                r
                for r in timeline
                if r.status is Status.ACCEPTED
                and r.direction is Direction.IN
                and r.zone_id == p.policy.zone_id
                and r.order < here
            ),
            key=lambda r: r.order,
        )
        related = [entries[-1].id] if entries else []
        if not related and p.row is not None:  # its stored readings were not loaded
            earlier = last_entry(self.conn, p.row.id, p.policy.zone_id, p.ordered_at)
            related = [earlier] if earlier else []
        return open_conflict(
            self.conn,
            organization_id=self.ctx.organization_id,
            event_id=p.event.id,
            kind=kind_of(verdict.reason),
            subs=self.ctx.subs,
            scan_ids=[p.item.id, *related],
            attendee_ids=[p.row.id] if p.row is not None else [],
            details={
                "device_id": self.ctx.device_id,
                "checkpoint_id": p.policy.id,
                "server_reason": verdict.reason.value,
                "scanned_at": p.item.scanned_at.isoformat(),
            },
        )

    def _record(self, p: Pending) -> dict[str, Any]:
        verdict = p.verdict
        assert verdict is not None
        device = p.item.device_verdict
        return {
            "id": p.item.id,
            "event_id": p.event.id,
            "checkpoint_id": p.policy.id,
            "zone_id": p.policy.zone_id,
            "attendee_id": p.row.id if p.row is not None else None,
            "code": stored_code(p.item.code),
            "direction": p.direction.value,
            "status": device.status.value,
            "reason": Reason.OK.value if p.admitted else device.reason.value,
            "warnings": [w.value for w in verdict.warnings] if p.admitted else [],
            "occupancy_delta": 0,
            "voided": False,
            "scanned_at": p.item.scanned_at,
            "ordered_at": p.ordered_at,
            "received_at": utcnow(),
            "device_id": self.ctx.device_id,
            "operator": p.item.operator,
            "offline": True,
            "manual": p.item.manual,
            "hlc": p.item.hlc,
            "device_status": device.status.value,
            "device_reason": device.reason.value,
            "conflict_id": None,
            **override_columns(p.item),
        }

    @staticmethod
    def _result(p: Pending, seq: int | None) -> ItemResult:
        verdict = p.verdict
        assert verdict is not None
        return ItemResult(
            id=p.item.id,
            status=ItemStatus.APPLIED,
            server_verdict=ServerVerdict(
                status=verdict.status,
                reason=verdict.reason,
                warnings=[w.value for w in verdict.warnings],
            ),
            conflict_id=p.conflict_id,
            attendee_id=p.row.id if p.row is not None else None,
            seq=seq,
        )


def _final(entry: Pending | _Copy | ItemResult) -> ItemResult:
    if isinstance(entry, Pending):
        assert entry.result is not None
        return entry.result
    if isinstance(entry, _Copy):
        first = _final(entry.first)
        if first.status is ItemStatus.REJECTED:
            return first
        return msgspec.structs.replace(first, status=ItemStatus.DUPLICATE)
    return entry
