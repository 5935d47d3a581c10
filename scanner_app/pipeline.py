"""The scan pipeline at a gate:

raw text (camera, handheld scanner, manual entry)
  -> `shared.resolution`: custom code in the cache, else a signed DC1 ticket verified with the
     cached key (valid even when the attendee is not cached yet), else unknown
  -> `shared.rules.decide` on this device's view: the attendee's state from the last pull
     plus this device's readings no pull reflects yet, and the zone's occupancy
  -> record the reading and enqueue it (one committed transaction)
  -> the verdict
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from scanner_app.context import GateContext
from scanner_app.state import GateConfig, GateVerdict
from scanner_app.store import Store, iso
from scanner_app.store.events import zone_state
from scanner_app.store.people import attendee_by_id, attendees_by_code
from scanner_app.store.readings import last_reading, record_reading, unreflected_of
from scanner_app.summaries import summary_json, ticket_summary, verdict_of
from shared.history import History, history_from_state, replay
from shared.hlc import HLC, tick
from shared.kinds import OverrideReason
from shared.override import admit_anyway
from shared.resolution import (
    Lookups,
    Resolved,
    ScannedAs,
    read_code,
    resolve,
    ticket_from_payload,
    ticket_of,
)
from shared.rules import (
    Direction,
    ScanInput,
    Ticket,
    Verdict,
    ZoneOccupancy,
    decide,
    effective_direction,
    within_window,
)

__all__ = ["ScanPipeline", "Supervised"]

MAX_STORED_CODE = 600


@dataclass(frozen=True, slots=True)
class Supervised:
    """A supervisor's override, checked (`scanner_app.override`): why, the note, who."""

    reason: OverrideReason
    note: str
    operator: str = ""

    def sealed(self, verdict: Verdict) -> list[str | None]:
        """The reading's override as the store seals it: reason, note, the denial it lifted."""
        lifted = verdict.overridden.value if verdict.overridden else None
        return [self.reason.value, self.note, lifted]


@dataclass(frozen=True, slots=True)
class _How:
    """How a code came to be decided: its source, whether manual, the direction asked and a
    supervisor's override."""

    source: str
    manual: bool = False
    direction: str | None = None
    supervised: Supervised | None = None


class ScanPipeline:
    """Decides and records readings; `device_id()` and `online()` are asked at each reading."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        device_id: Callable[[], str | None],
        online: Callable[[], bool],
    ) -> None:
        self.store, self.clock = store, clock
        self._device_id, self._online = device_id, online
        stored = store.get_meta("hlc")
        self.hlc = HLC.parse(stored) if stored else HLC.zero(device_id() or "local")
        # The last code that named nobody (unknown, malformed, forged), where, which way and its
        # verdict: read again within the double-read window, it is shown again, not recorded.
        self._last_unnamed: tuple[str, str, str, GateVerdict] | None = None

    def restart_clock(self, device_id: str) -> None:
        """A freshly paired device starts its hybrid clock again under its new id."""
        self.hlc = HLC.zero(device_id)

    def stamp(self) -> str:
        """The next hybrid-clock stamp for something this device records."""
        self.hlc = tick(self.hlc, int(time.time() * 1000))
        return self.hlc.encode()

    # -- entry points --------------------------------------------------------------------------
    def submit(
        self, ctx: GateContext, config: GateConfig, text: str | bytes, source: str
    ) -> GateVerdict:
        rows: dict[str, sqlite3.Row | None] = {}
        found = resolve(read_code(text), ctx.event_id, self._lookups(ctx, rows))
        return self._decide(ctx, config, found, rows, _How(source))

    def check_in(
        self, ctx: GateContext, config: GateConfig, attendee_id: str, direction: str | None
    ) -> GateVerdict:
        """Manual check-in (or out) of an attendee picked from a search: recorded as manual."""
        rows: dict[str, sqlite3.Row | None] = {}
        read = read_code(attendee_id, manual=True)
        found = resolve(read, ctx.event_id, self._lookups(ctx, rows))
        return self._decide(ctx, config, found, rows, _How("manual", True, direction))

    def override(
        self, ctx: GateContext, config: GateConfig, target: str, supervised: Supervised
    ) -> GateVerdict:
        """A supervisor lets the guest a code (or an attendee id) names in although the rules
        deny it: recorded as an admission with `override` (a guest the rules admit is simply
        admitted). Raises `OverrideInvalid` for a code no override can admit."""
        rows: dict[str, sqlite3.Row | None] = {}
        read = read_code(target, manual=True)
        found = resolve(read, ctx.event_id, self._lookups(ctx, rows))
        manual = read.kind is ScannedAs.ATTENDEE_ID
        how = _How("manual" if manual else "override", manual, "in", supervised)
        return self._decide(ctx, config, found, rows, how)

    # -- resolution ----------------------------------------------------------------------------
    def _row(self, rows: dict[str, sqlite3.Row | None], attendee_id: str) -> sqlite3.Row | None:
        """A cached attendee, read once per reading however often resolution asks."""
        if attendee_id not in rows:
            rows[attendee_id] = attendee_by_id(self.store, attendee_id)
        return rows[attendee_id]

    def _lookups(self, ctx: GateContext, rows: dict[str, sqlite3.Row | None]) -> Lookups:
        store = self.store

        def attendee_event(attendee_id: str) -> str | None:
            row = self._row(rows, attendee_id)
            return None if row is None else str(row["event_id"])

        def issued_qr(attendee_id: str) -> str | None:
            row = self._row(rows, attendee_id)
            return None if row is None else row["qr"]

        return Lookups(
            by_code=lambda code: [(r["id"], r["event_id"]) for r in attendees_by_code(store, code)],
            event_key=ctx.keys.get,
            attendee_event=attendee_event,
            issued_qr=issued_qr,
        )

    def ticket(self, ctx: GateContext, row: sqlite3.Row) -> Ticket:
        """The rules' view of a cached attendee."""
        tt = ctx.ticket_types.get(row["ticket_type"]) if row["event_id"] == ctx.event_id else None
        return ticket_of(
            attendee_id=row["id"],
            event_id=row["event_id"],
            status=row["status"],
            tags=json.loads(row["tags"] or "[]"),
            window=(_at(row["valid_from"]), _at(row["valid_until"])),
            ticket_type=row["ticket_type"],
            type_window=(_at(tt["valid_from"]), _at(tt["valid_until"])) if tt else (None, None),
            is_vip=bool(tt["is_vip"]) if tt is not None else False,
            names=(row["first_name"], row["last_name"]),
        )

    def _ticket_of(
        self, ctx: GateContext, found: Resolved, rows: dict[str, sqlite3.Row | None]
    ) -> tuple[sqlite3.Row | None, Ticket | None]:
        if found.attendee_id is None:
            return None, None
        row = self._row(rows, found.attendee_id)
        if row is not None:
            return row, self.ticket(ctx, row)
        if found.payload is None or found.event_id is None:
            return None, None
        # Signed but not cached yet: the ticket itself says who and what it is.
        tt = (
            ctx.types_by_number.get(found.payload.ticket_type_number)
            if found.event_id == ctx.event_id
            else None
        )
        ticket = ticket_from_payload(
            found.payload,
            found.event_id,
            tt["slug"] if tt is not None else None,
            is_vip=bool(tt["is_vip"]) if tt is not None else False,
        )
        return None, ticket

    def history(
        self, row: sqlite3.Row | None, attendee_id: str, *, debounce: bool = True
    ) -> History:
        """This device's view of an attendee: the pulled state, its own unreflected readings on
        top (in the order they were taken), and (`debounce`) its last reading of them with the
        verdict it had, for the double-read window."""
        base = history_from_state(json.loads(row["state"])) if row is not None else History()
        readings = sorted(unreflected_of(self.store, attendee_id), key=lambda r: r.order)
        history = replay((r.reading for r in readings), base)
        if not debounce:
            return history
        last = last_reading(self.store, attendee_id)
        return history.seen_by(self.device, *last) if last is not None else history

    @property
    def device(self) -> str:
        return self._device_id() or "local"

    def occupancy(self, ctx: GateContext) -> ZoneOccupancy | None:
        if ctx.zone is None:
            return None
        state = zone_state(self.store, ctx.zone["id"])
        return None if state is None else ZoneOccupancy(*state)

    # -- decide and record ---------------------------------------------------------------------
    def _decide(
        self,
        ctx: GateContext,
        config: GateConfig,
        found: Resolved,
        rows: dict[str, sqlite3.Row | None],
        how: _How,
    ) -> GateVerdict:
        asked = how.direction if how.direction in ("in", "out") else config.direction
        effective = effective_direction(ctx.policy.direction, Direction(asked), strict=False)
        again = None if how.supervised else self._unnamed_again(ctx, found, effective)
        if again is not None:
            return again
        with self.store.transaction() as conn:
            now = self.clock()
            row, ticket = self._ticket_of(ctx, found, rows)
            history = self.history(row, ticket.attendee_id) if ticket else History()
            scan = ScanInput(
                checkpoint=ctx.policy,
                now=now,
                direction=effective,
                ticket=ticket,
                code_error=found.error,
                history=history,
                zone=self.occupancy(ctx),
                device_id=self.device,
                code=found.code,
                checkpoints=ctx.checkpoints,
            )
            verdict = decide(scan)
            supervised = how.supervised if not verdict.accepted else None
            if supervised is not None:
                verdict = admit_anyway(scan, verdict)
            offline = not self._online()
            summary = ticket_summary(ticket, row, ctx)
            via = (
                ctx.checkpoint_names.get(verdict.via_checkpoint_id, verdict.via_checkpoint_id)
                if verdict.via_checkpoint_id
                else None
            )
            reading_id = str(uuid.uuid4()) if verdict.record else None
            if reading_id is not None:
                values = {
                    "id": reading_id,
                    "event_id": ctx.event_id,
                    "checkpoint_id": ctx.policy.id,
                    "attendee_id": ticket.attendee_id if ticket is not None else None,
                    "code": found.code[:MAX_STORED_CODE],
                    "direction": verdict.direction.value,
                    "status": verdict.status.value,
                    "reason": verdict.reason.value,
                    "warnings": json.dumps([w.value for w in verdict.warnings]),
                    "scanned_at": iso(now),
                    "hlc": "",
                    "operator": (supervised.operator if supervised else "")
                    or config.operator
                    or None,
                    "manual": how.manual,
                    "source": how.source,
                    "zone_key": verdict.zone_id,
                    "occupancy_delta": verdict.occupancy_delta,
                    "offline": offline,
                    "summary": summary_json(summary),
                    "inside_since": iso(verdict.inside_since),
                    "inside_via": via,
                    "override": supervised.sealed(verdict) if supervised else None,
                }
                values["hlc"] = self.stamp()
                record_reading(self.store, conn, values, values["hlc"])
        shown = verdict_of(
            reading_id,
            found.code,
            verdict,
            summary,
            offline=offline,
            now=now,
            manual=how.manual,
            via=via,
            names=ctx.checkpoint_names,
            override_reason=supervised.reason.value if supervised else None,
        )
        if ticket is None:
            self._last_unnamed = (found.code, ctx.policy.id, effective.value, shown)
        return shown

    def _unnamed_again(
        self, ctx: GateContext, found: Resolved, direction: Direction
    ) -> GateVerdict | None:
        """A code that named nobody, read again here within the double-read window: its
        verdict again, marked as a repeat and not recorded (an attendee's repeats are the
        rules' own, from their history)."""
        last = self._last_unnamed
        if found.error is None or last is None:
            return None
        code, checkpoint_id, way, shown = last
        now = self.clock()
        if (code, checkpoint_id, way) != (found.code, ctx.policy.id, direction.value):
            return None
        if not within_window(shown.scanned_at, now):
            return None
        return replace(shown, id=None, repeat=True, scanned_at=now)


def _at(value: str | None) -> datetime | None:
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00"))
