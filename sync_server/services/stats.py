"""Live numbers of an event: occupancy per zone, entries, exits and unique attendees in per
checkpoint and per ticket type, denials by reason, supervisors' overrides, and scans per minute
(last hour).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from sync_server.db import utcnow
from sync_server.models import Attendee, Checkpoint, Event, Scan, TicketType, Zone

__all__ = ["event_stats"]


def event_stats(session: Session, event: Event) -> dict[str, Any]:
    zones = session.exec(select(Zone).where(Zone.event_id == event.id)).all()
    checkpoints = session.exec(select(Checkpoint).where(Checkpoint.event_id == event.id)).all()
    counted = (Scan.event_id == event.id, col(Scan.voided).is_(False))

    per_checkpoint: dict[str, dict[str, int]] = {
        cp.id: {"entries": 0, "exits": 0, "denied": 0, "unique_in": 0} for cp in checkpoints
    }
    rows = session.exec(
        select(
            Scan.checkpoint_id,
            Scan.direction,
            Scan.status,
            func.count(),
            func.count(func.distinct(Scan.attendee_id)),
        )
        .where(*counted)
        .group_by(col(Scan.checkpoint_id), col(Scan.direction), col(Scan.status))
    ).all()
    for cp_id, direction, status, count, unique in rows:
        bucket = per_checkpoint.setdefault(
            cp_id, {"entries": 0, "exits": 0, "denied": 0, "unique_in": 0}
        )
        if status != "accepted":
            bucket["denied"] += count
        elif direction == "in":
            bucket["entries"] += count
            bucket["unique_in"] += unique
        else:
            bucket["exits"] += count

    per_type = {
        slug: {"entries": 0, "unique_in": 0, "attendees": 0}
        for slug in session.exec(select(TicketType.slug).where(TicketType.event_id == event.id))
    }
    for slug, count, unique in session.exec(
        select(TicketType.slug, func.count(), func.count(func.distinct(Scan.attendee_id)))
        .join(Attendee, col(Attendee.id) == col(Scan.attendee_id))
        .join(TicketType, col(TicketType.id) == col(Attendee.ticket_type_id))
        .where(*counted, Scan.status == "accepted", Scan.direction == "in")
        .group_by(col(TicketType.slug))
    ).all():
        per_type[slug].update(entries=count, unique_in=unique)
    for slug, count in session.exec(
        select(TicketType.slug, func.count())
        .join(Attendee, col(Attendee.ticket_type_id) == col(TicketType.id))
        .where(TicketType.event_id == event.id)
        .group_by(col(TicketType.slug))
    ).all():
        per_type[slug]["attendees"] = count

    denied = dict(
        session.exec(
            select(Scan.reason, func.count())
            .where(*counted, Scan.status == "denied")
            .group_by(col(Scan.reason))
        ).all()
    )
    overrides = dict(
        session.exec(
            select(Scan.checkpoint_id, func.count())
            .where(*counted, col(Scan.override).is_(True))
            .group_by(col(Scan.checkpoint_id))
        ).all()
    )
    since = utcnow() - timedelta(hours=1)
    recent = session.exec(
        select(Scan.received_at).where(Scan.event_id == event.id, col(Scan.received_at) >= since)
    ).all()
    per_minute: dict[str, int] = {}
    for at in recent:
        key = at.replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")
        per_minute[key] = per_minute.get(key, 0) + 1
    unique_in = session.exec(
        select(func.count(func.distinct(Scan.attendee_id))).where(
            *counted, Scan.status == "accepted", Scan.direction == "in"
        )
    ).one()
    return {
        "object": "event_stats",
        "event_id": event.id,
        "generated_at": utcnow(),
        "capacity": event.capacity,
        "zones": [
            {"id": z.id, "name": z.name, "capacity": z.capacity, "occupancy": z.occupancy}
            for z in zones
        ],
        "unique_attendees_in": unique_in,
        "checkpoints": [
            {
                "id": cp.id,
                "name": cp.name,
                **per_checkpoint[cp.id],
                "overrides": overrides.get(cp.id, 0),
            }
            for cp in checkpoints
        ],
        "ticket_types": [{"slug": slug, **numbers} for slug, numbers in per_type.items()],
        "denied_by_reason": denied,
        "overrides": sum(overrides.values()),  # supervisors' admissions (counted in entries too)
        "scans_per_minute": [{"minute": k, "scans": v} for k, v in sorted(per_minute.items())],
    }
