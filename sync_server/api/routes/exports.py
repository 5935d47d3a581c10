"""Exports (SPEC section 13): `GET /v1/events/{id}/attendees/export` and `…/scans/export`,
streamed as CSV (`?format=csv`, the default) or JSON lines (`?format=jsonl`), with the lists'
filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from shared.rules import AttendeeStatus
from sync_server.api.deps import EventDep, SessionDep
from sync_server.services.attendees import AttendeeFilters, ticket_type_by_slug
from sync_server.services.exports import (
    ExportFormat,
    attendee_export,
    media_type,
    scan_export,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/events/{event_id}", tags=["exports"])

FormatQuery = Annotated[
    ExportFormat, Query(description="`csv` (a header row, as an import reads it) or `jsonl`")
]
_STREAM = {
    200: {
        "description": "The rows, streamed",
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _streamed(chunks: object, fmt: ExportFormat, name: str) -> StreamingResponse:
    extension = "csv" if fmt is ExportFormat.CSV else "jsonl"
    return StreamingResponse(
        chunks,  # type: ignore[arg-type]
        media_type=media_type(fmt),
        headers={"Content-Disposition": f'attachment; filename="{name}.{extension}"'},
    )


@router.get(
    "/attendees/export",
    operation_id="export_attendees",
    summary="Export attendees (CSV or JSON lines)",
    response_class=StreamingResponse,
    responses=_STREAM,  # type: ignore[arg-type]
)
def export_attendees(
    event: EventDep,
    session: SessionDep,
    request: Request,
    format: FormatQuery = ExportFormat.CSV,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status: AttendeeStatus | None = None,
    ticket_type: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    checked_in: bool | None = None,
) -> StreamingResponse:
    """Every attendee of the event that the list's filters select, newest first, streamed: a
    CSV with the columns an import reads back (`tags` joined by `;`, one `custom.<key>` column
    per custom field), or one JSON object per line exactly as the list shows it. Needs `read`."""
    type_id = ticket_type_by_slug(session, event, ticket_type).id if ticket_type else None
    filters = AttendeeFilters(q, status, type_id, tag, checked_in)
    chunks = attendee_export(request.app.state.read_engine, event, filters, format)
    return _streamed(chunks, format, f"attendees-{event.slug}")


@router.get(
    "/scans/export",
    operation_id="export_scans",
    summary="Export the reading log (CSV or JSON lines)",
    response_class=StreamingResponse,
    responses=_STREAM,  # type: ignore[arg-type]
)
def export_scans(
    event: EventDep,
    request: Request,
    format: FormatQuery = ExportFormat.CSV,
    checkpoint: Annotated[str | None, Query(max_length=40)] = None,
    attendee: Annotated[str | None, Query(max_length=40)] = None,
    device: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> StreamingResponse:
    """Every reading of the event that the log's filters select, newest received first,
    streamed as CSV or JSON lines (each line as `GET …/scans` shows it). Needs `read`."""
    where = {
        column: value
        for column, value in (
            ("checkpoint_id", checkpoint),
            ("attendee_id", attendee),
            ("device_id", device),
            ("status", status),
        )
        if value
    }
    chunks = scan_export(request.app.state.read_engine, event.id, where, format)
    return _streamed(chunks, format, f"scans-{event.slug}")
