"""The gate's answers as the door shows them (`scanner_app.state` values), built from cached rows
and verdicts: an attendee's summary, a verdict, a logged reading.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from scanner_app.context import GateContext
from scanner_app.state import AttendeeSummary, GateVerdict
from scanner_app.store import parse_iso
from shared.rules import REASON_MESSAGES, Reason, Ticket, Verdict

__all__ = ["logged_verdict", "row_summary", "summary_json", "ticket_summary", "verdict_of"]


def ticket_summary(
    ticket: Ticket | None, row: sqlite3.Row | None, ctx: GateContext
) -> AttendeeSummary | None:
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


def row_summary(row: sqlite3.Row, ctx: GateContext | None, inside: bool) -> AttendeeSummary:
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


def summary_json(summary: AttendeeSummary | None) -> str:
    """The attendee as the reading log keeps it (wiped when the device is revoked)."""
    if summary is None:
        return "{}"
    return json.dumps(
        {
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
    )


def verdict_of(
    reading_id: str | None,
    code: str,
    verdict: Verdict,
    summary: AttendeeSummary | None,
    *,
    offline: bool,
    now: datetime,
    manual: bool,
    via: str | None,
    names: dict[str, str] | None = None,
    override_reason: str | None = None,
) -> GateVerdict:
    """A verdict as the door shows it (`names`: checkpoint names for the detail's ids)."""
    detail = verdict.detail.named(names or {}) if verdict.detail is not None else None
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
        repeat=verdict.repeat,
        detail=detail,
        override=verdict.override,
        override_reason=override_reason,
        overridden_reason=verdict.overridden.value if verdict.overridden else None,
    )


def _logged_attendee(summary: dict[str, Any]) -> AttendeeSummary | None:
    if not summary.get("id"):
        return None
    return AttendeeSummary(
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


def logged_verdict(r: Mapping[str, Any]) -> GateVerdict:
    """A reading of the log as the verdict it was."""
    reason = Reason(r["reason"])
    scanned_at = parse_iso(r["scanned_at"])
    assert scanned_at is not None
    return GateVerdict(
        r["id"],
        r["code"],
        r["status"],
        reason.value,
        REASON_MESSAGES[reason],
        tuple(json.loads(r["warnings"] or "[]")),
        _logged_attendee(json.loads(r["summary"] or "{}")),
        bool(r["offline"]),
        scanned_at,
        r["direction"],
        bool(r["manual"]),
        parse_iso(r["inside_since"]),
        r["inside_via"],
        override=r.get("override") is not None,
        override_reason=(r.get("override") or [None])[0],
        overridden_reason=(r.get("override") or [None, None, None])[2],
    )
