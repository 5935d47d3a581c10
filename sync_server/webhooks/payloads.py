"""The webhook event catalog: every type we send, what it means and an example of its `data`
(SPEC section 8). `GET /v1/webhooks/catalog` and docs/webhooks.md show these."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["CATALOG", "EVENT_TYPES", "EventType"]


@dataclass(frozen=True, slots=True)
class EventType:
    """One webhook type: ``EventType("checkin.accepted", "A ticket was admitted…", {...})``."""

    type: str
    description: str
    example: dict[str, Any]


_EVENT = {"id": "evt_3k2m7d9qzq4a", "name": "Fest 2026"}
_ATTENDEE = {
    "id": "att_5x7tq2mzr4bb",
    "first_name": "Ana",
    "last_name": "Ruiz",
    "email": "ana@example.com",
    "ticket_type": {"id": "tt_9f4c2kq7mz3a", "slug": "vip", "name": "VIP"},
    "tags": ["press"],
    "is_vip": True,
    "status": "valid",
}


def _checkin(*, accepted: bool) -> dict[str, Any]:
    return {
        "scan_id": "0b9c6f1e-7c1d-4c52-9a55-0f0c3b8c2d11",
        "event": _EVENT,
        "checkpoint": {"id": "cp_7h2k4m9qzx2a", "name": "Gate A"},
        "zone": {"id": "zone_2m9q4k7hx3ab", "name": "Main hall"},
        "direction": "in",
        "attendee": _ATTENDEE,
        "scanned_at": "2026-06-12T18:04:11.250Z",
        "received_at": "2026-06-12T18:04:11.410Z",
        "device": {"id": "dev_4q7m2k9zhx3a", "name": "Gate phone 1"},
        "operator": "marta",
        "offline": False,
        "reason": "ok" if accepted else "already_inside",
        "override": False,
        "override_reason": None,
        "override_note": None,
        "overridden_reason": None,
    }


# `attendee.*` carry the whole attendee as the API shows it (GET …/attendees/{id}), plus is_vip
_WHOLE = {
    "object": "attendee",
    "id": "att_5x7tq2mzr4bb",
    "event_id": "evt_3k2m7d9qzq4a",
    "first_name": "Ana",
    "last_name": "Ruiz",
    "email": "ana@example.com",
    "phone": None,
    "company": "Acme",
    "ticket_type": "vip",
    "tags": ["press"],
    "custom_data": {"seat": "A12"},
    "code": None,
    "qr": "DC1AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYUCULBOGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBV",
    "status": "valid",
    "source": "api",
    "valid_from": None,
    "valid_until": None,
    "inside": {"zone_2m9q4k7hx3ab": False},
    "entries": 0,
    "last_scan_at": None,
    "created_at": "2026-06-01T09:30:00.000000Z",
    "updated_at": "2026-06-01T09:30:00.000000Z",
    "is_vip": True,
}


def _attendee(**changes: Any) -> dict[str, Any]:
    return {"event": _EVENT, "attendee": {**_WHOLE, **changes}}


_CONFLICT = {
    "id": "cfl_8k3m2q7zhx4a",
    "event": _EVENT,
    "kind": "revoked",
    "status": "open",
    "scan_ids": ["0b9c6f1e-7c1d-4c52-9a55-0f0c3b8c2d11"],
    "attendee_ids": ["att_5x7tq2mzr4bb"],
    "created_at": "2026-06-12T18:09:40.020Z",
}

_TYPES = (
    EventType(
        "checkin.accepted",
        "A reading admitted a ticket at a checkpoint (online, or offline once it reaches the "
        "server with offline: true and its original scanned_at). A supervisor's override has "
        "override: true, override_reason (vip, staff_decision, ticket_problem, other), "
        "override_note and overridden_reason (the denial it lifted).",
        _checkin(accepted=True),
    ),
    EventType(
        "checkin.denied",
        "A reading refused a ticket; reason is the public reason code (revoked, zone_full, …).",
        _checkin(accepted=False),
    ),
    EventType(
        "attendee.registered",
        "An attendee was created: through the API, an import or registration at the door.",
        {**_attendee(), "source": "api"},
    ),
    EventType(
        "attendee.updated",
        "An attendee's details changed: attendee is the whole attendee now, changed lists the "
        "fields and previous holds their earlier values.",
        {
            **_attendee(email="ana.ruiz@example.com", updated_at="2026-06-02T10:00:00.000000Z"),
            "changed": ["email"],
            "previous": {"email": "ana@example.com"},
        },
    ),
    EventType(
        "attendee.status_changed",
        "An attendee's ticket status changed (valid, cancelled, revoked).",
        {**_attendee(status="revoked"), "previous_status": "valid"},
    ),
    EventType(
        "conflict.detected",
        "An offline reading disagreed with what the server knew; a person should look at it.",
        _CONFLICT,
    ),
    EventType(
        "conflict.resolved",
        "A conflict was resolved by an organizer.",
        {
            **_CONFLICT,
            "status": "resolved",
            "resolution": "accept",
            "resolved_by": "key_6m2q9k4zhx7a",
            "resolved_at": "2026-06-12T18:15:02.000Z",
        },
    ),
    EventType(
        "zone.capacity_reached",
        "A zone with a capacity became full; further entries are refused until someone leaves.",
        {
            "event": _EVENT,
            "zone": {"id": "zone_2m9q4k7hx3ab", "name": "Main hall"},
            "capacity": 500,
            "occupancy": 500,
            "reached_at": "2026-06-12T19:30:00.000Z",
        },
    ),
    EventType(
        "webhook.test",
        "Sent on POST /v1/webhooks/{id}/test to check that an endpoint receives and verifies.",
        {"endpoint_id": "we_2k7m4q9zhx3a", "message": "Hello from doorcheck"},
    ),
)

CATALOG: MappingProxyType[str, EventType] = MappingProxyType({t.type: t for t in _TYPES})
EVENT_TYPES: frozenset[str] = frozenset(CATALOG)
