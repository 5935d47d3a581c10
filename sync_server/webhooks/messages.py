"""The `data` of each webhook type, built from the rows the services already hold (the shapes
of `payloads.CATALOG`). Builders read nothing they are not given, except `names` lookups that
callers make only when someone subscribes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from sync_server.models import Device, Event, TicketType, Zone
from sync_server.models.people import AttendeePublic

__all__ = [
    "attendee_data",
    "checkin_data",
    "conflict_data",
    "device_ref",
    "event_ref",
    "ticket_type_refs",
    "whole_attendee",
    "zone_full_data",
]

EVENTS: Table = Event.__table__  # type: ignore[assignment]
DEVICES: Table = Device.__table__  # type: ignore[assignment]
TICKET_TYPES: Table = TicketType.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]


def event_ref(conn: Connection, event_id: str) -> dict[str, Any]:
    name = conn.execute(select(EVENTS.c.name).where(EVENTS.c.id == event_id)).scalar()
    return {"id": event_id, "name": name}


def device_ref(conn: Connection, device_id: str | None) -> dict[str, Any] | None:
    if device_id is None:
        return None
    name = conn.execute(select(DEVICES.c.name).where(DEVICES.c.id == device_id)).scalar()
    return {"id": device_id, "name": name}


def zone_ref(conn: Connection, zone_id: str | None) -> dict[str, Any] | None:
    if zone_id is None:
        return None
    name = conn.execute(select(ZONES.c.name).where(ZONES.c.id == zone_id)).scalar()
    return {"id": zone_id, "name": name}


def ticket_type_refs(conn: Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`{ticket_type_id: {"id", "slug", "name", "is_vip"}}` for the given ids."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(
            TICKET_TYPES.c.id, TICKET_TYPES.c.slug, TICKET_TYPES.c.name, TICKET_TYPES.c.is_vip
        ).where(TICKET_TYPES.c.id.in_(wanted))
    )
    return {r.id: {"id": r.id, "slug": r.slug, "name": r.name, "is_vip": r.is_vip} for r in rows}


def attendee_data(row: Any, ticket_type: dict[str, Any]) -> dict[str, Any]:
    """An attendee as webhooks show it (`row`: an Attendee, a row or a mapping-like object)."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    return {
        "id": get("id"),
        "first_name": get("first_name"),
        "last_name": get("last_name"),
        "email": get("email"),
        "ticket_type": {k: ticket_type.get(k) for k in ("id", "slug", "name")},
        "tags": list(get("tags") or []),
        "is_vip": bool(ticket_type.get("is_vip")),
        "status": get("status"),
    }


def whole_attendee(row: Any, ticket_type: dict[str, Any]) -> dict[str, Any]:
    """An attendee exactly as the API shows it (`attendee.*` payloads, SPEC section 13), plus
    `is_vip`; `row`: an `Attendee`, a table row or a mapping of its columns."""
    if isinstance(row, dict):
        fields = row
    elif hasattr(row, "_asdict"):
        fields = row._asdict()
    else:
        fields = row.model_dump()
    public = AttendeePublic.of(fields, str(ticket_type.get("slug") or ""))
    return {**public.model_dump(mode="json"), "is_vip": bool(ticket_type.get("is_vip"))}


def checkin_data(
    *,
    scan: dict[str, Any],
    event: dict[str, Any],
    checkpoint: Any,
    zone: dict[str, Any] | None,
    attendee: dict[str, Any] | None,
    device: dict[str, Any] | None,
) -> dict[str, Any]:
    """`checkin.accepted` / `checkin.denied`: `scan` is the scans row as inserted (a supervisor's
    override is a `checkin.accepted` with `override: true`, its reason, note and the denial it
    lifted)."""
    return {
        "scan_id": scan["id"],
        "event": event,
        "checkpoint": {"id": checkpoint.id, "name": checkpoint.name},
        "zone": zone,
        "direction": scan["direction"],
        "attendee": attendee,
        "scanned_at": scan["scanned_at"],
        "received_at": scan["received_at"],
        "device": device,
        "operator": scan["operator"],
        "offline": scan["offline"],
        "reason": scan["reason"],
        # a supervisor's override (SPEC section 11): admitted although the rules denied it
        "override": bool(scan.get("override")),
        "override_reason": scan.get("override_reason"),
        "override_note": scan.get("override_note"),
        "overridden_reason": scan.get("overridden_reason"),
    }


def conflict_data(row: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """`conflict.detected` / `conflict.resolved` from a conflicts row (or its values)."""
    data = {
        "id": row["id"],
        "event": event,
        "kind": row["kind"],
        "status": row["status"],
        "scan_ids": list(row.get("scan_ids") or []),
        "attendee_ids": list(row.get("attendee_ids") or []),
        "created_at": row.get("created_at"),
    }
    if row["status"] == "resolved":
        data |= {k: row.get(k) for k in ("resolution", "resolved_by", "resolved_at")}
    return data


def zone_full_data(
    event: dict[str, Any], zone: dict[str, Any], capacity: int, occupancy: int, at: datetime
) -> dict[str, Any]:
    return {
        "event": event,
        "zone": zone,
        "capacity": capacity,
        "occupancy": occupancy,
        "reached_at": at,
    }
