"""The webhooks a group of pushed readings queues in its own transaction: `checkin.*` for every
applied reading (`offline: true`) and `zone.capacity_reached` for each zone the group filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from shared.policy import ZoneOccupancy, zone_filled
from sync_server.db import utcnow
from sync_server.services.lookups import ticket_type_ref
from sync_server.services.push_items import PushContext
from sync_server.webhooks import messages, outbox

__all__ = ["Announced", "announce_group"]


class Announced(Protocol):
    """A reading of the group as announced: its event and checkpoint rows, the attendee row
    when it is the event's, and the row it was recorded as."""

    event: Any
    checkpoint: Any
    row: Any
    record: dict[str, Any]


def announce_group(
    conn: Connection,
    ctx: PushContext,
    readings: Sequence[Announced],
    zones_before: Mapping[str, ZoneOccupancy],
    zone_changes: Mapping[str, int],
) -> None:
    subs = ctx.subs
    wanted = [
        r for r in readings if outbox.wanted(subs, f"checkin.{r.record['status']}", r.event.id)
    ]
    full = [
        (zone_id, zones_before[zone_id])
        for zone_id, change in sorted(zone_changes.items())
        if zone_id in zones_before
        and zone_filled(zones_before[zone_id].occupancy, change, zones_before[zone_id].capacity)
    ]
    if not wanted and not full:
        return
    device = messages.device_ref(conn, ctx.device_id)
    events = {e.id: {"id": e.id, "name": e.name} for e in ctx.events.values() if e}
    zone_names: dict[str, dict[str, Any] | None] = {}

    def zone(zone_id: str | None) -> dict[str, Any] | None:
        if zone_id is not None and zone_id not in zone_names:
            zone_names[zone_id] = messages.zone_ref(conn, zone_id)
        return zone_names.get(zone_id) if zone_id else None

    items = [
        outbox.Emission(
            r.event.id,
            f"checkin.{r.record['status']}",
            messages.checkin_data(
                scan=r.record,
                event=events[r.event.id],
                checkpoint=r.checkpoint,
                zone=zone(r.record["zone_id"]),
                attendee=(
                    messages.attendee_data(r.row, ticket_type_ref(r.row))
                    if r.row is not None
                    else None
                ),
                device=device,
            ),
        )
        for r in wanted
    ]
    event_of_zone = {r.checkpoint.zone_id: r.event.id for r in readings}
    for zone_id, before in full:
        event_id = event_of_zone[zone_id]
        ref = zone(zone_id) or {"id": zone_id, "name": None}
        capacity = before.capacity or 0
        data = messages.zone_full_data(events[event_id], ref, capacity, capacity, utcnow())
        items.append(outbox.Emission(event_id, "zone.capacity_reached", data))
    outbox.emit_many(conn, subs, organization_id=ctx.organization_id, items=items)
