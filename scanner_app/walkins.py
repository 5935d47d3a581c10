"""Walk-ins: a person registered at the door (checked here, queued for the server) and admitted
at once through the scan pipeline, as a manual check-in of the attendee the registration makes.
"""

from __future__ import annotations

import json
import re
import uuid

from scanner_app.context import GateContext
from scanner_app.errors import FieldProblem, WalkinInvalid
from scanner_app.pipeline import ScanPipeline
from scanner_app.state import GateConfig, GateVerdict
from scanner_app.store import iso
from scanner_app.store.people import email_taken, insert_walk_in
from scanner_app.store.readings import record_registration
from shared import ids

__all__ = ["WalkIn", "register_walkin"]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")


class WalkIn:
    """The walk-in form as typed; `problems()` checks it against the cache."""

    def __init__(
        self,
        first_name: str,
        last_name: str,
        email: str | None,
        ticket_type: str,
        tags: list[str] | None = None,
    ) -> None:
        self.first = (first_name or "").strip()
        self.last = (last_name or "").strip()
        self.email = (email or "").strip() or None
        self.ticket_type = ticket_type
        self.tags = sorted({t.strip() for t in (tags or []) if t and t.strip()})

    def problems(self, pipeline: ScanPipeline, ctx: GateContext) -> dict[str, FieldProblem]:
        found: dict[str, FieldProblem] = {}
        for name, value in (("first_name", self.first), ("last_name", self.last)):
            if not value:
                found[name] = FieldProblem.REQUIRED
            elif len(value) > 200:
                found[name] = FieldProblem.TOO_LONG
        if self.email is not None:
            if len(self.email) > 320 or not _EMAIL.match(self.email):
                found["email"] = FieldProblem.INVALID_EMAIL
            elif email_taken(pipeline.store, ctx.event_id, self.email):
                found["email"] = FieldProblem.EMAIL_TAKEN
        if self.ticket_type not in ctx.ticket_types:
            found["ticket_type"] = FieldProblem.CHOOSE_TICKET_TYPE
        if len(self.tags) > 50 or any(len(t) > 64 for t in self.tags):
            found["tags"] = FieldProblem.TOO_MANY_TAGS
        return found


def register_walkin(
    pipeline: ScanPipeline, ctx: GateContext, config: GateConfig, walk_in: WalkIn
) -> GateVerdict:
    """Queue the registration, cache the new attendee and admit them, in one transaction."""
    problems = walk_in.problems(pipeline, ctx)
    if problems:
        raise WalkinInvalid(problems)
    registration_id = str(uuid.uuid4())
    attendee_id = ids.registration_attendee_id(registration_id)
    values = {
        "id": registration_id,
        "event_id": ctx.event_id,
        "attendee_id": attendee_id,
        "first_name": walk_in.first,
        "last_name": walk_in.last,
        "email": walk_in.email,
        "ticket_type": walk_in.ticket_type,
        "tags": json.dumps(walk_in.tags),
        "created_at": iso(pipeline.clock()),
        "hlc": "",
    }
    with pipeline.store.transaction() as conn:
        values["hlc"] = pipeline.stamp()
        record_registration(pipeline.store, conn, values)
        insert_walk_in(pipeline.store, conn, {**values, "id": attendee_id})
        return pipeline.check_in(ctx, config, attendee_id, "in")
