"""The headless gate: everything a door does except drawing it.

    raw text (camera, handheld scanner, manual entry)
      -> normalise (`shared.tickets.normalize_code`)
      -> resolve: custom code in the cache, else a signed DC1 ticket verified with the cached
         public key (valid even when the attendee is not cached yet), else unknown
      -> `shared.rules.decide` on this device's view: the attendee's state from the last pull
         plus this device's readings no pull has reflected yet, and the zone's occupancy
      -> record the reading and enqueue it (one committed transaction)
      -> the verdict

Manual check-ins (by attendee id) and walk-in registrations take the same path. The Flet app,
`doorcheck scan` and the tests drive a gate only through this class.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from scanner_app.cache import apply_events
from scanner_app.client import ServerClient, SyncError
from scanner_app.state import (
    AttendeeSummary,
    CheckpointChoice,
    EventChoice,
    GateConfig,
    GateStats,
    GateVerdict,
    OutboxItem,
    SyncStatus,
)
from scanner_app.store import Store, fold_key, iso, parse_iso
from scanner_app.syncer import Syncer
from shared import ids
from shared.hlc import HLC, tick
from shared.rules import (
    REASON_MESSAGES,
    AttendeeStatus,
    CheckpointDirection,
    CheckpointPolicy,
    Direction,
    History,
    Reading,
    Reason,
    ScanInput,
    Status,
    Ticket,
    Verdict,
    ZoneOccupancy,
    decide,
    effective_direction,
    zone_key,
)
from shared.sync import CheckpointRow, history_from_state
from shared.tickets import (
    InvalidSignature,
    MalformedCode,
    decode_ticket,
    event_digest,
    is_signed_code,
    normalize_code,
    public_key_from_b64,
    verify_ticket,
)

__all__ = ["Gate", "GateError", "PairingError", "WalkinInvalid", "default_data_dir"]

STORE_FILE = "scanner.db"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")
_MAX_STORED_CODE = 600  # what a malformed code keeps for the log (still malformed on the server)


class GateError(Exception):
    """A gate operation that cannot run (not paired, not configured, revoked)."""


class PairingError(GateError):
    pass


class WalkinInvalid(GateError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def default_data_dir() -> Path:
    env = os.environ.get("DOORCHECK_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "doorcheck"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Context:
    """The configured checkpoint and its event, cached until the configuration changes."""

    version: int
    event_id: str
    policy: CheckpointPolicy
    checkpoint_name: str
    checkpoint_names: dict[str, str]
    ticket_types: dict[str, Any]  # slug -> row
    types_by_number: dict[int, Any]
    zone: Any | None
    public_keys: dict[bytes, tuple[str, bytes]]  # event digest -> (event id, raw public key)


class Gate:
    def __init__(self, data_dir: Path, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.data_dir = Path(data_dir)
        self.store = Store(self.data_dir / STORE_FILE)
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []
        self._client: ServerClient | None = None
        self._client_lock = threading.Lock()
        self._ctx: _Context | None = None
        self._ctx_lock = threading.Lock()
        self._device_id: str | None = None
        self._config: GateConfig | None = None
        self.syncer = Syncer(self.store, self._get_client, self._event_ids, self._changed)
        hlc = self.store.get_meta("hlc")
        self._hlc = HLC.parse(hlc) if hlc else HLC.zero(self.device_id or "local")

    @classmethod
    def open(cls, data_dir: Path | None = None, **kwargs: Any) -> Gate:
        return cls(data_dir or default_data_dir(), **kwargs)

    def close(self) -> None:
        self.stop()
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        self.store.close()

    # -- listeners ---------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _changed(self) -> None:
        for callback in list(self._listeners):
            with contextlib.suppress(Exception):  # a view's error must never break the gate
                callback()

    # -- pairing -----------------------------------------------------------------------------
    @property
    def device_id(self) -> str | None:
        if self._device_id is None:
            self._device_id = self.store.get_meta("device_id")
        return self._device_id

    @property
    def server_url(self) -> str | None:
        return self.store.get_meta("server_url")

    @property
    def paired(self) -> bool:
        return self.store.get_meta("device_token") is not None and not self.revoked

    @property
    def revoked(self) -> bool:
        return self.syncer.state.revoked

    def _get_client(self) -> ServerClient | None:
        with self._client_lock:
            if self._client is None:
                url, token = self.server_url, self.store.get_meta("device_token")
                if not url or not token or self.revoked:
                    return None
                self._client = ServerClient(url, token)
            return self._client

    def pair(self, server_url: str, code: str, name: str = "Scanner") -> None:
        """Trade an enrolment code for this device's token and download the event list."""
        server_url = server_url.strip().rstrip("/")
        if urlparse(server_url).scheme not in ("http", "https") or not urlparse(server_url).netloc:
            raise PairingError("the server address must start with http:// or https://")
        if not code.strip():
            raise PairingError("enter the enrolment code shown by the admin")
        anonymous = ServerClient(server_url)
        try:
            answer = anonymous.enroll(code.strip(), name.strip()[:100] or "Scanner")
        except SyncError as exc:
            message = str(exc)
            if "invalid_enrollment_code" in message:
                message = "this enrolment code is unknown, used or expired: ask for a new one"
            raise PairingError(message) from None
        finally:
            anonymous.close()
        self.stop()
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        for key, value in (
            ("server_url", server_url),
            ("device_id", answer["device_id"]),
            ("device_token", answer["device_token"]),
            ("organization_id", answer.get("organization_id", "")),
            ("device_name", name),
            ("revoked", None),
        ):
            self.store.set_meta(key, value)
        self._device_id = None
        self.syncer.state.revoked = False
        self.syncer.state.last_error = None
        self._hlc = HLC.zero(answer["device_id"])
        client = self._get_client()
        if client is not None:
            try:
                self.syncer.refresh_events(client)
                self.syncer._ok()
            except SyncError as exc:
                self.syncer._failed(exc)
        self._changed()

    def pair_uri(self, uri: str, name: str = "Scanner") -> None:
        """`doorcheck://pair?server=<url>&code=<code>` (the admin's pairing QR)."""
        parsed = urlparse(uri.strip())
        query = parse_qs(parsed.query)
        if parsed.scheme != "doorcheck" or "server" not in query or "code" not in query:
            raise PairingError("not a doorcheck pairing code")
        self.pair(query["server"][0], query["code"][0], name)

    # -- configuration -----------------------------------------------------------------------
    def events(self) -> list[EventChoice]:
        out = []
        for event in self.store.query("SELECT id, name FROM events ORDER BY name"):
            cps = self.store.query(
                "SELECT id, name, data FROM checkpoints WHERE event_id = ? ORDER BY name",
                (event["id"],),
            )
            types = self.store.query(
                "SELECT slug, name FROM ticket_types WHERE event_id = ? ORDER BY number",
                (event["id"],),
            )
            choices = []
            for cp in cps:
                data = json.loads(cp["data"])
                choices.append(
                    CheckpointChoice(
                        cp["id"],
                        cp["name"],
                        data.get("direction", "in"),
                        data.get("zone_id"),
                        bool(data.get("active", True)),
                    )
                )
            out.append(
                EventChoice(
                    event["id"],
                    event["name"],
                    tuple(choices),
                    tuple((t["slug"], t["name"]) for t in types),
                )
            )
        return out

    def refresh_events(self) -> list[EventChoice]:
        client = self._get_client()
        if client is not None:
            try:
                self.syncer.refresh_events(client)
            except SyncError as exc:
                self.syncer._failed(exc)
        return self.events()

    @property
    def config(self) -> GateConfig | None:
        if self._config is None:
            raw = self.store.get_json("config")
            self._config = None if raw is None else GateConfig(**raw)
        return self._config

    def configure(
        self, event_id: str, checkpoint_id: str, direction: str = "in", operator: str = ""
    ) -> GateConfig:
        row = self.store.one(
            "SELECT data FROM checkpoints WHERE id = ? AND event_id = ?", (checkpoint_id, event_id)
        )
        if row is None:
            raise GateError("unknown event or checkpoint: sync the event list first")
        cp_direction = CheckpointDirection(json.loads(row["data"]).get("direction", "in"))
        wanted = Direction(direction) if direction in ("in", "out") else Direction.IN
        if cp_direction is not CheckpointDirection.BOTH:
            wanted = Direction(cp_direction.value)
        config = GateConfig(event_id, checkpoint_id, wanted.value, operator.strip()[:200])  # type: ignore[arg-type]
        self.store.set_json(
            "config",
            {
                "event_id": event_id,
                "checkpoint_id": checkpoint_id,
                "direction": wanted.value,
                "operator": config.operator,
            },
        )
        self._ctx = None
        self._config = None
        self.syncer._pull_wake.set()
        self._changed()
        return config

    def set_direction(self, direction: str) -> None:
        config = self.config
        if config is None:
            raise GateError("choose an event and a checkpoint first")
        self.configure(config.event_id, config.checkpoint_id, direction, config.operator)

    def _event_ids(self) -> list[str]:
        config = self.config
        return [config.event_id] if config else []

    def _context(self) -> _Context:
        ctx = self._ctx
        config = self.config
        if (
            ctx is not None
            and config is not None
            and ctx.policy.id == config.checkpoint_id
            and ctx.version == self.store.config_version
        ):
            return ctx
        if config is None:
            raise GateError("choose an event and a checkpoint first")
        if self.revoked:
            raise GateError("this device was revoked: pair it again")
        with self._ctx_lock:
            cp = self.store.one(
                "SELECT name, data FROM checkpoints WHERE id = ?", (config.checkpoint_id,)
            )
            if cp is None:
                raise GateError("the configured checkpoint is no longer in the cache")
            policy = CheckpointRow.model_validate_json(cp["data"]).to_policy()
            types = self.store.query(
                "SELECT * FROM ticket_types WHERE event_id = ?", (config.event_id,)
            )
            zone = (
                self.store.one("SELECT * FROM zones WHERE id = ?", (policy.zone_id,))
                if policy.zone_id
                else None
            )
            keys = {}
            for event in self.store.query("SELECT id, public_key FROM events"):
                if event["public_key"]:
                    keys[event_digest(event["id"])] = (
                        event["id"],
                        public_key_from_b64(event["public_key"]),
                    )
            names = {
                r["id"]: r["name"]
                for r in self.store.query(
                    "SELECT id, name FROM checkpoints WHERE event_id = ?", (config.event_id,)
                )
            }
            ctx = _Context(
                self.store.config_version,
                config.event_id,
                policy,
                cp["name"],
                names,
                {t["slug"]: t for t in types},
                {t["number"]: t for t in types},
                zone,
                keys,
            )
            self._ctx = ctx
            return ctx

    def invalidate(self) -> None:
        """Drop the cached checkpoint context (after a pull changed the configuration)."""
        self._ctx = None

    # -- the pipeline ------------------------------------------------------------------------
    def submit(self, text: str | bytes, *, source: str = "camera") -> GateVerdict:
        """Decide one scanned or typed code, record it, enqueue it, return the verdict."""
        ctx = self._context()
        try:
            code = normalize_code(text)
        except MalformedCode:
            return self._decide(ctx, _printable(text), None, None, Reason.MALFORMED_CODE, source)
        row, ticket, error = self._resolve(ctx, code)
        return self._decide(ctx, code, row, ticket, error, source)

    def check_in_attendee(self, attendee_id: str, direction: str | None = None) -> GateVerdict:
        """Manual check-in (or out) of an attendee picked from a search: recorded as manual."""
        ctx = self._context()
        row = self.store.one("SELECT * FROM attendees WHERE id = ?", (attendee_id,))
        ticket = None if row is None else self._ticket(ctx, row)
        error = None if row is not None else Reason.UNKNOWN_CODE
        return self._decide(
            ctx, attendee_id, row, ticket, error, "manual", manual=True, direction=direction
        )

    def _resolve(self, ctx: _Context, code: str) -> tuple[Any, Ticket | None, Reason | None]:
        rows = self.store.query("SELECT * FROM attendees WHERE code = ? LIMIT 8", (code,))
        if rows:
            row = min(rows, key=lambda r: r["event_id"] != ctx.event_id)  # this event first
            return row, self._ticket(ctx, row), None
        if not is_signed_code(code):
            return None, None, Reason.UNKNOWN_CODE
        try:
            digest = decode_ticket(code).payload.event_digest
            owner = ctx.public_keys.get(digest)
            if owner is None:
                return None, None, Reason.INVALID_SIGNATURE
            payload = verify_ticket(code, owner[1])
        except MalformedCode:
            return None, None, Reason.MALFORMED_CODE
        except InvalidSignature:
            return None, None, Reason.INVALID_SIGNATURE
        row = self.store.one("SELECT * FROM attendees WHERE id = ?", (payload.attendee_id,))
        if row is not None:
            return row, self._ticket(ctx, row), None
        # Signed but not cached yet: the ticket itself says who and what it is.
        tt = (
            ctx.types_by_number.get(payload.ticket_type_number)
            if owner[0] == ctx.event_id
            else None
        )
        ticket = Ticket(
            attendee_id=payload.attendee_id,
            event_id=owner[0],
            ticket_type=tt["slug"] if tt is not None else f"#{payload.ticket_type_number}",
            valid_from=_epoch(payload.valid_from),
            valid_until=_epoch(payload.valid_until),
            is_vip=bool(tt["is_vip"]) if tt is not None else False,
        )
        return None, ticket, None

    def _ticket(self, ctx: _Context, row: Any) -> Ticket:
        tt = ctx.ticket_types.get(row["ticket_type"]) if row["event_id"] == ctx.event_id else None
        valid_from, valid_until = parse_iso(row["valid_from"]), parse_iso(row["valid_until"])
        if tt is not None:
            tf, tu = parse_iso(tt["valid_from"]), parse_iso(tt["valid_until"])
            valid_from = (
                tf if valid_from is None else valid_from if tf is None else max(valid_from, tf)
            )
            valid_until = (
                tu if valid_until is None else valid_until if tu is None else min(valid_until, tu)
            )
        try:
            status = AttendeeStatus(row["status"])
        except ValueError:
            status = AttendeeStatus.REVOKED
        return Ticket(
            attendee_id=row["id"],
            event_id=row["event_id"],
            ticket_type=row["ticket_type"],
            status=status,
            tags=frozenset(json.loads(row["tags"] or "[]")),
            valid_from=valid_from,
            valid_until=valid_until,
            first_name=row["first_name"],
            last_name=row["last_name"],
            is_vip=bool(tt["is_vip"]) if tt is not None else False,
        )

    def _history(self, row: Any, attendee_id: str) -> History:
        history = history_from_state(json.loads(row["state"])) if row is not None else History()
        device = self.device_id or "local"
        unreflected = self.store.query(
            "SELECT checkpoint_id, zone_key, direction, status, scanned_at, occupancy_delta"
            " FROM readings WHERE attendee_id = ? AND reflected = 0 ORDER BY scanned_at, seq",
            (attendee_id,),
        )
        for r in unreflected:
            history = history.apply(
                Reading(
                    r["checkpoint_id"],
                    r["zone_key"] or f"cp:{r['checkpoint_id']}",
                    Direction(r["direction"]),
                    Status(r["status"]),
                    parse_iso(r["scanned_at"]),  # type: ignore[arg-type]
                    device,
                    r["occupancy_delta"],
                )
            )
        last = self.store.one(
            "SELECT max(scanned_at) FROM readings WHERE attendee_id = ?", (attendee_id,)
        )
        at = parse_iso(last[0]) if last is not None else None
        if at is not None:  # this device's last reading of them, for the 3 s debounce
            history = History(
                history.zones, history.checkpoint_entries, {**history.last_by_device, device: at}
            )
        return history

    def _occupancy(self, ctx: _Context) -> ZoneOccupancy | None:
        if ctx.zone is None:
            return None
        zone = self.store.one(
            "SELECT capacity, occupancy FROM zones WHERE id = ?", (ctx.zone["id"],)
        )
        if zone is None:
            return None
        local = self.store.one("SELECT delta FROM zone_deltas WHERE zone_id = ?", (ctx.zone["id"],))
        extra = int(local[0]) if local else 0
        return ZoneOccupancy(zone["capacity"], int(zone["occupancy"]) + extra)

    def _decide(
        self,
        ctx: _Context,
        code: str,
        row: Any,
        ticket: Ticket | None,
        error: Reason | None,
        source: str,
        *,
        manual: bool = False,
        direction: str | None = None,
        registration: tuple[str, ...] | None = None,
    ) -> GateVerdict:
        config = self.config
        assert config is not None
        wanted = direction or config.direction
        try:
            effective = effective_direction(ctx.policy.direction, Direction(wanted))
        except ValueError:
            effective = Direction(ctx.policy.direction.value)
        with self.store.transaction() as conn:
            now = self.clock()
            history = self._history(row, ticket.attendee_id) if ticket is not None else History()
            verdict = decide(
                ScanInput(
                    checkpoint=ctx.policy,
                    now=now,
                    direction=effective,
                    ticket=ticket,
                    code_error=error,
                    history=history,
                    zone=self._occupancy(ctx),
                    device_id=self.device_id or "local",
                )
            )
            offline = not self.syncer.state.online
            summary = _summary(ticket, row, ctx)
            via = (
                ctx.checkpoint_names.get(verdict.via_checkpoint_id, verdict.via_checkpoint_id)
                if verdict.via_checkpoint_id
                else None
            )
            reading_id = str(uuid.uuid4()) if verdict.record else None
            if reading_id is not None:
                self._hlc = tick(self._hlc, int(time.time() * 1000))
                conn.execute(
                    "INSERT INTO readings(id, event_id, checkpoint_id, attendee_id, code,"
                    " direction, status, reason, warnings, scanned_at, hlc, operator, manual,"
                    " source, zone_key, occupancy_delta, offline, summary, inside_since,"
                    " inside_via, state, reflected) VALUES"
                    " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'pending',0)",
                    (
                        reading_id,
                        ctx.event_id,
                        ctx.policy.id,
                        ticket.attendee_id if ticket is not None else None,
                        code[:_MAX_STORED_CODE],
                        verdict.direction.value,
                        verdict.status.value,
                        verdict.reason.value,
                        json.dumps([w.value for w in verdict.warnings]),
                        iso(now),
                        self._hlc.encode(),
                        config.operator or None,
                        manual,
                        source,
                        verdict.zone
                        if verdict.zone and not verdict.zone.startswith("cp:")
                        else None,
                        verdict.occupancy_delta,
                        offline,
                        json.dumps(_summary_json(summary)),
                        iso(verdict.inside_since),
                        via,
                    ),
                )
                zone = _real_zone(verdict.zone)
                if zone is not None and verdict.occupancy_delta:
                    conn.execute(
                        "INSERT INTO zone_deltas(zone_id, delta) VALUES (?, ?) ON CONFLICT"
                        "(zone_id) DO UPDATE SET delta = zone_deltas.delta + excluded.delta",
                        (zone, verdict.occupancy_delta),
                    )
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('hlc', ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (self._hlc.encode(),),
                )
        if reading_id is not None:
            self.syncer.wake()
        result = _gate_verdict(reading_id, code, verdict, summary, offline, now, manual, via)
        self._changed()
        return result

    # -- walk-ins ----------------------------------------------------------------------------
    def register_walkin(
        self,
        first_name: str,
        last_name: str,
        email: str | None,
        ticket_type: str,
        tags: list[str] | None = None,
    ) -> GateVerdict:
        """Register a walk-in at the door and admit them at once (queued for the server)."""
        ctx = self._context()
        first, last = (first_name or "").strip(), (last_name or "").strip()
        mail = (email or "").strip() or None
        clean_tags = sorted({t.strip() for t in (tags or []) if t and t.strip()})
        errors: dict[str, str] = {}
        if not first:
            errors["first_name"] = "required"
        elif len(first) > 200:
            errors["first_name"] = "at most 200 characters"
        if not last:
            errors["last_name"] = "required"
        elif len(last) > 200:
            errors["last_name"] = "at most 200 characters"
        if mail is not None:
            if len(mail) > 320 or not _EMAIL.match(mail):
                errors["email"] = "not a valid email address"
            elif self.store.one(
                "SELECT 1 FROM attendees WHERE event_id = ? AND email_key = ?",
                (ctx.event_id, fold_key(mail)),
            ):
                errors["email"] = "already registered: search for this person instead"
        if ticket_type not in ctx.ticket_types:
            errors["ticket_type"] = "choose a ticket type"
        if len(clean_tags) > 50 or any(len(t) > 64 for t in clean_tags):
            errors["tags"] = "at most 50 tags of 64 characters"
        if errors:
            raise WalkinInvalid(errors)
        reg_id = str(uuid.uuid4())
        attendee_id = ids.registration_attendee_id(reg_id)
        now = self.clock()
        with self.store.transaction() as conn:
            self._hlc = tick(self._hlc, int(time.time() * 1000))
            conn.execute(
                "INSERT INTO registrations(id, event_id, attendee_id, first_name, last_name,"
                " email, ticket_type, tags, created_at, hlc, state) VALUES"
                " (?,?,?,?,?,?,?,?,?,?,'pending')",
                (
                    reg_id,
                    ctx.event_id,
                    attendee_id,
                    first,
                    last,
                    mail,
                    ticket_type,
                    json.dumps(clean_tags),
                    iso(now),
                    self._hlc.encode(),
                ),
            )
            conn.execute(
                "INSERT INTO attendees(id, event_id, status, ticket_type, tags, first_name,"
                " last_name, email, first_key, last_key, email_key, walk_in)"
                " VALUES (?,?,'valid',?,?,?,?,?,?,?,?,1)",
                (
                    attendee_id,
                    ctx.event_id,
                    ticket_type,
                    json.dumps(clean_tags),
                    first,
                    last,
                    mail,
                    fold_key(first),
                    fold_key(last),
                    fold_key(mail),
                ),
            )
            verdict = self.check_in_attendee(attendee_id, "in")
        self.syncer.wake()
        return verdict

    # -- reading the cache -------------------------------------------------------------------
    def attendee(self, attendee_id: str) -> AttendeeSummary | None:
        row = self.store.one("SELECT * FROM attendees WHERE id = ?", (attendee_id,))
        if row is None:
            return None
        ctx = self._ctx_or_none()
        return _row_summary(row, ctx, self._inside(row, ctx))

    def _ctx_or_none(self) -> _Context | None:
        try:
            return self._context()
        except GateError:
            return None

    def _inside(self, row: Any, ctx: _Context | None) -> bool:
        if ctx is None:
            return False
        return self._history(row, row["id"]).presence(zone_key(ctx.policy)).inside

    def search(self, q: str, limit: int = 30) -> list[AttendeeSummary]:
        """Attendees whose first name, last name or email starts with the query, or whose code
        is exactly it; several words must all match (`ana ru` finds Ana Ruiz)."""
        words = fold_key(q).split()
        if not words:
            return []
        ctx = self._ctx_or_none()
        config = self.config
        event_id = config.event_id if config else None
        head, rest = words[0], words[1:]
        hi = head + "\uffff"
        found: dict[str, Any] = {}
        clause = "event_id = ? AND " if event_id else ""
        base: tuple[Any, ...] = (event_id,) if event_id else ()
        for column in ("first_key", "last_key", "email_key"):
            for row in self.store.query(
                f"SELECT * FROM attendees WHERE {clause}{column} >= ? AND {column} < ?"
                f" ORDER BY {column} LIMIT ?",
                (*base, head, hi, limit * 2),
            ):
                found.setdefault(row["id"], row)
        exact = q.strip()
        for row in self.store.query(
            "SELECT * FROM attendees WHERE code = ? UNION ALL SELECT * FROM attendees WHERE id = ?",
            (exact, exact),
        ):
            if event_id is None or row["event_id"] == event_id:
                found.setdefault(row["id"], row)

        def matches(row: Any) -> bool:
            keys = (row["first_key"], row["last_key"], row["email_key"])
            return all(any(k.startswith(w) for k in keys) for w in rest)

        rows = sorted(
            (r for r in found.values() if matches(r)),
            key=lambda r: (r["last_key"], r["first_key"], r["id"]),
        )[:limit]
        return [_row_summary(r, ctx, self._inside(r, ctx)) for r in rows]

    def recent(self, limit: int = 50) -> list[GateVerdict]:
        out = []
        for r in self.store.query("SELECT * FROM readings ORDER BY seq DESC LIMIT ?", (limit,)):
            summary = json.loads(r["summary"] or "{}")
            att = (
                AttendeeSummary(
                    summary["id"],
                    summary.get("first_name", ""),
                    summary.get("last_name", ""),
                    summary.get("email"),
                    summary.get("ticket_type"),
                    summary.get("ticket_type_name"),
                    tuple(summary.get("tags", ())),
                    bool(summary.get("is_vip")),
                    summary.get("status", "valid"),
                )
                if summary.get("id")
                else None
            )
            reason = Reason(r["reason"])
            out.append(
                GateVerdict(
                    r["id"],
                    r["code"],
                    r["status"],
                    reason.value,
                    REASON_MESSAGES[reason],
                    tuple(json.loads(r["warnings"] or "[]")),
                    att,
                    bool(r["offline"]),
                    parse_iso(r["scanned_at"]),  # type: ignore[arg-type]
                    r["direction"],
                    bool(r["manual"]),
                    parse_iso(r["inside_since"]),
                    r["inside_via"],
                )
            )
        return out

    def outbox(self, limit: int = 100) -> list[OutboxItem]:
        items = []
        for r in self.store.query(
            "SELECT * FROM registrations WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit,)
        ):
            items.append(
                OutboxItem(
                    r["id"],
                    "registration",
                    f"{r['first_name']} {r['last_name']}".strip() or r["attendee_id"],
                    parse_iso(r["created_at"]),  # type: ignore[arg-type]
                    r["attempts"],
                    r["last_error"],
                )
            )
        for r in self.store.query(
            "SELECT * FROM readings WHERE state = 'pending' ORDER BY seq LIMIT ?",
            (max(limit - len(items), 0),),
        ):
            summary = json.loads(r["summary"] or "{}")
            name = f"{summary.get('first_name', '')} {summary.get('last_name', '')}".strip()
            items.append(
                OutboxItem(
                    r["id"],
                    "scan",
                    name or r["code"][:40],
                    parse_iso(r["scanned_at"]),  # type: ignore[arg-type]
                    r["attempts"],
                    r["last_error"],
                    r["direction"],
                    r["status"],
                )
            )
        return items

    def status(self) -> SyncStatus:
        state = self.syncer.state
        count = self.store.one("SELECT count(*) FROM attendees")
        return SyncStatus(
            paired=self.paired,
            online=state.online,
            offline_since=state.offline_since,
            pending=self.syncer.pending_count(),
            last_sync=state.last_sync,
            last_error=state.last_error,
            revoked=state.revoked,
            clock_offset_ms=state.clock_offset_ms,
            server_url=self.server_url,
            syncing=state.syncing,
            attendees_cached=int(count[0]) if count else 0,
        )

    def stats(self) -> GateStats:
        ctx = self._ctx_or_none()
        if ctx is None:
            return GateStats(None, 0, None, 0, 0)
        occupancy = self._occupancy(ctx)
        midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        counts = dict(
            self.store.query(
                "SELECT direction, count(*) FROM readings WHERE checkpoint_id = ?"
                " AND status = 'accepted' AND scanned_at >= ? GROUP BY direction",
                (ctx.policy.id, iso(midnight)),
            )
        )
        return GateStats(
            ctx.zone["name"] if ctx.zone is not None else None,
            occupancy.occupancy if occupancy else 0,
            occupancy.capacity if occupancy else None,
            int(counts.get("in", 0)),
            int(counts.get("out", 0)),
        )

    # -- sync --------------------------------------------------------------------------------
    def start(self) -> None:
        if self.paired:
            self.syncer.start()

    def stop(self) -> None:
        self.syncer.stop()

    def sync_now(self, timeout: float = 30.0) -> bool:
        ok = self.syncer.sync_now(timeout)
        self.invalidate()
        self._changed()
        return ok

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        apply_events(self.store, events)
        self.invalidate()


# -- small helpers --------------------------------------------------------------------------------
def _narrow(
    a: datetime | None, b: datetime | None, pick: Callable[[datetime, datetime], datetime]
) -> datetime | None:
    return b if a is None else a if b is None else pick(a, b)


def _real_zone(zone: str | None) -> str | None:
    return zone if zone and not zone.startswith("cp:") else None


def _epoch(value: int | None) -> datetime | None:
    return None if not value else datetime.fromtimestamp(value, UTC)


def _printable(text: str | bytes) -> str:
    """What a malformed scan keeps for the log and the server: short, storable (no NUL, no lone
    surrogate) and still malformed (control characters are kept, NUL becomes SUB)."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text[: _MAX_STORED_CODE * 4]).decode("utf-8", "replace")
    return "".join(
        "\x1a" if ch == "\x00" else "\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch
        for ch in text[:_MAX_STORED_CODE]
    )


def _summary(ticket: Ticket | None, row: Any, ctx: _Context) -> AttendeeSummary | None:
    if ticket is None:
        return None
    tt = ctx.ticket_types.get(ticket.ticket_type) if ticket.event_id == ctx.event_id else None
    return AttendeeSummary(
        id=ticket.attendee_id,
        first_name=ticket.first_name,
        last_name=ticket.last_name,
        email=row["email"] if row is not None else None,
        ticket_type=ticket.ticket_type,
        ticket_type_name=tt["name"] if tt is not None else None,
        tags=tuple(sorted(ticket.tags)),
        is_vip=ticket.is_vip,
        status=ticket.status.value,
        code=row["code"] if row is not None else None,
    )


def _summary_json(summary: AttendeeSummary | None) -> dict[str, Any]:
    if summary is None:
        return {}
    return {
        "id": summary.id,
        "first_name": summary.first_name,
        "last_name": summary.last_name,
        "email": summary.email,
        "ticket_type": summary.ticket_type,
        "ticket_type_name": summary.ticket_type_name,
        "tags": list(summary.tags),
        "is_vip": summary.is_vip,
        "status": summary.status,
    }


def _row_summary(row: Any, ctx: _Context | None, inside: bool) -> AttendeeSummary:
    tt = ctx.ticket_types.get(row["ticket_type"]) if ctx is not None else None
    return AttendeeSummary(
        id=row["id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        ticket_type=row["ticket_type"],
        ticket_type_name=tt["name"] if tt is not None else None,
        tags=tuple(json.loads(row["tags"] or "[]")),
        is_vip=bool(tt["is_vip"]) if tt is not None else False,
        status=row["status"],
        code=row["code"],
        inside=inside,
    )


def _gate_verdict(
    reading_id: str | None,
    code: str,
    verdict: Verdict,
    summary: AttendeeSummary | None,
    offline: bool,
    now: datetime,
    manual: bool,
    via: str | None,
) -> GateVerdict:
    return GateVerdict(
        id=reading_id,
        code=code,
        status=verdict.status.value,  # type: ignore[arg-type]
        reason=verdict.reason.value,
        message=verdict.message,
        warnings=tuple(w.value for w in verdict.warnings),
        attendee=summary,
        offline=offline,
        scanned_at=now,
        direction=verdict.direction.value,  # type: ignore[arg-type]
        manual=manual,
        inside_since=verdict.inside_since,
        inside_via=via,
    )
