"""`doorcheck export attendees|scans`: an event's attendees or readings as CSV or JSON lines,
streamed from a server (`--server URL --api-key KEY`) or read from a database (`--db URL`), to a
file or standard output, with the lists' filters."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated
from urllib.parse import quote

import typer

from sync_server.cli_server import fail, open_engine

__all__ = ["export"]


class What(StrEnum):
    ATTENDEES = "attendees"
    SCANS = "scans"


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


Text = Annotated[str | None, typer.Option(help="Filter (as the list's query parameter).")]


@contextmanager
def _output(out: Path | None) -> Iterator[IO[bytes]]:
    if out is None:
        yield sys.stdout.buffer
        return
    try:
        with out.open("wb") as handle:
            yield handle
    except OSError as exc:
        raise fail(f"cannot write to {out}: {exc.strerror or exc}") from exc


def export(
    what: Annotated[What, typer.Argument(help="attendees or scans (the reading log).")],
    event: Annotated[str, typer.Option("--event", help="The event id (evt_…).")],
    server: Annotated[str | None, typer.Option(help="Server URL (needs --api-key).")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="DOORCHECK_API_KEY", help="An API key with read scope.")
    ] = None,
    db: Annotated[str | None, typer.Option(help="Database URL to read from.")] = None,
    format: Annotated[Format, typer.Option("--format", help="csv or jsonl.")] = Format.CSV,
    out: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
    q: Text = None,
    status: Text = None,
    ticket_type: Text = None,
    tag: Text = None,
    checked_in: Annotated[bool | None, typer.Option(help="Only (not) checked in.")] = None,
    checkpoint: Text = None,
    attendee: Text = None,
    device: Text = None,
) -> None:
    """Export an event's attendees or readings (CSV that an import reads back, or JSON lines)."""
    if (server is None) == (db is None):
        raise typer.BadParameter("give either --server URL --api-key KEY, or --db URL")
    if server is not None and not api_key:
        raise typer.BadParameter("--server needs --api-key (or $DOORCHECK_API_KEY)")
    people = {"q": q, "status": status, "ticket_type": ticket_type, "tag": tag}
    readings = {"checkpoint": checkpoint, "attendee": attendee, "device": device, "status": status}
    filters = people if what is What.ATTENDEES else readings
    params = {k: v for k, v in filters.items() if v is not None}
    if what is What.ATTENDEES and checked_in is not None:
        params["checked_in"] = "true" if checked_in else "false"
    elif what is What.SCANS and (q or ticket_type or tag or checked_in is not None):
        raise typer.BadParameter("--q, --ticket-type, --tag and --checked-in filter attendees")
    with _output(out) as sink:
        if server is not None:
            # the id is one path segment, whatever it holds (never `../` to another route)
            path = f"/v1/events/{quote(event, safe='')}/{what}/export"
            _over_http(sink, server.rstrip("/"), str(api_key), path,
                       {**params, "format": format.value})  # fmt: skip
        else:
            _from_db(sink, db, event, what, format, params)
    if out is not None:
        typer.echo(f"wrote {out}", err=True)


def _over_http(sink: IO[bytes], server: str, key: str, path: str, params: dict[str, str]) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.stream("GET", server + path, params=params, headers=headers, timeout=60) as r:
            if r.status_code != 200:
                r.read()
                try:
                    message = r.json()["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    message = r.text[:200]
                raise fail(f"the server answered {r.status_code}: {message}")
            for chunk in r.iter_bytes():
                sink.write(chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise fail(f"cannot reach {server}: {exc}") from exc


def _from_db(
    sink: IO[bytes], db: str | None, event_id: str, what: What, fmt: Format, params: dict[str, str]
) -> None:
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlmodel import Session

    from sync_server.errors import ApiError
    from sync_server.models import Event
    from sync_server.services.attendees import AttendeeFilters, ticket_type_by_slug
    from sync_server.services.exports import ExportFormat, attendee_export, scan_export

    try:
        engine = open_engine(db, migrate=False)
    except ArgumentError as exc:  # not a database URL, or a driver that is not installed
        raise fail(f"cannot use the database URL: {str(exc).splitlines()[0]}") from exc
    reads = engine.execution_options(sqlite_immediate=False)  # no write lock: readers only
    try:
        with Session(reads) as session:
            event = session.get(Event, event_id)
            if event is None:
                raise fail(f"no such event: {event_id}")
            kind = ExportFormat(fmt.value)
            if what is What.ATTENDEES:
                slug = params.get("ticket_type")
                type_id = ticket_type_by_slug(session, event, slug).id if slug else None
                checked = params.get("checked_in")
                filters = AttendeeFilters(
                    params.get("q"), params.get("status"), type_id, params.get("tag"),
                    None if checked is None else checked == "true",
                )  # fmt: skip
                chunks = attendee_export(reads, event, filters, kind)
            else:
                names = {"checkpoint": "checkpoint_id", "attendee": "attendee_id",
                         "device": "device_id", "status": "status"}  # fmt: skip
                chunks = scan_export(
                    engine, event.id, {names[k]: v for k, v in params.items()}, kind
                )
            for chunk in chunks:
                sink.write(chunk)
    except ApiError as exc:
        raise fail(exc.message) from exc
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        raise fail(f"cannot read the database: {cause}") from exc
    finally:
        engine.dispose()
