"""The demo organization: an event with ticket types, zones (one small), two checkpoints and a few
hundred attendees, created through the same services the API uses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from sync_server.db import session_scope, utcnow
from sync_server.models import Checkpoint, TicketType, Zone
from sync_server.models.events import (
    CheckpointCreate,
    EventCreate,
    TicketTypeCreate,
    ZoneCreate,
)
from sync_server.models.people import AttendeeCreate, AttendeeSource
from sync_server.services.attendees import create_attendee
from sync_server.services.events import create_child, create_event
from sync_server.services.keys import create_organization

__all__ = ["DemoEvent", "seed_demo"]

FIRST = [
    "Ana",
    "Luis",
    "Marta",
    "Jorge",
    "Lucía",
    "Pablo",
    "Sofía",
    "Diego",
    "Elena",
    "Iván",
    "Noa",
    "Hugo",
    "Carmen",
    "Raúl",
    "Irene",
    "Tomás",
    "Julia",
    "Mateo",
    "Laura",
    "Álvaro",
]
LAST = [
    "García",
    "Martínez",
    "López",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Ruiz",
    "Díaz",
    "Moreno",
    "Álvarez",
    "Romero",
    "Navarro",
    "Torres",
    "Domínguez",
    "Vega",
    "Castro",
    "Smith",
    "Okafor",
]


@dataclass(frozen=True)
class DemoEvent:
    organization_id: str
    api_key: str
    event_id: str
    entrance_id: str
    workshop_id: str


def seed_demo(engine: Engine, secret: bytes, *, attendees: int = 300, seed: int = 7) -> DemoEvent:
    rng = random.Random(seed)
    now = utcnow()
    with session_scope(engine) as session:
        org, key = create_organization(session, name="Demo Productions", secret=secret)
    with session_scope(engine) as session:
        event = create_event(
            session,
            organization_id=org.id,
            secret=secret,
            data=EventCreate(
                name="doorcheck Demo Fest",
                slug="demo-fest",
                timezone="Europe/Madrid",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=2),
                capacity=500,
            ),
        )
        for name, slug, vip in (
            ("General", "general", False),
            ("VIP", "vip", True),
            ("Staff", "staff", False),
        ):
            create_child(
                session, TicketType, event, TicketTypeCreate(name=name, slug=slug, is_vip=vip)
            )
        hall = create_child(session, Zone, event, ZoneCreate(name="Main hall", capacity=400))
        room = create_child(session, Zone, event, ZoneCreate(name="Workshop room", capacity=5))
        entrance = create_child(
            session,
            Checkpoint,
            event,
            CheckpointCreate(name="Main entrance", zone_id=hall.id, direction="both"),
        )
        workshop = create_child(
            session,
            Checkpoint,
            event,
            CheckpointCreate(
                name="Workshop door",
                zone_id=room.id,
                direction="both",
                allowed_ticket_types=["vip", "staff"],
            ),
        )
        for i in range(attendees):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            kind = "vip" if i % 10 == 0 else "staff" if i % 25 == 1 else "general"
            create_attendee(
                session,
                event=event,
                source=AttendeeSource.IMPORT,
                secret=secret,
                data=AttendeeCreate(
                    first_name=first,
                    last_name=last,
                    ticket_type=kind,
                    email=f"{first.lower()}.{last.lower()}.{i}@demo.doorcheck.dev".encode(
                        "ascii", "ignore"
                    ).decode(),
                    tags=["press"] if i % 17 == 0 else [],
                ),
            )
    return DemoEvent(org.id, key, event.id, entrance.id, workshop.id)
