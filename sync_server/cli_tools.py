"""Organizer tools: `import` (an attendee list into an event, over HTTP or straight into a
database); `tickets` lives in `cli_tickets`, `export` in `cli_export`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from sync_server.cli_server import fail, open_engine, settings_for

if TYPE_CHECKING:
    from rich.console import Console

    from sync_server.services.import_plan import Progress as ProgressCallback

__all__ = ["tools_app"]

tools_app = typer.Typer()
MAX_SHOWN_ERRORS = 50
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/csv",
    ".txt": "text/csv",
    ".json": "application/json",
}


def _usage(message: str) -> typer.Exit:
    """Bad usage: one line on stderr and exit code 2."""
    typer.echo(f"doorcheck: {message} (see --help)", err=True)
    return typer.Exit(2)


def _content_type(file: Path) -> str:
    kind = CONTENT_TYPES.get(file.suffix.lower())
    if kind is None:
        raise _usage(f"cannot tell the format of {file.name!r}: name it .csv or .json")
    return kind


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from exc


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _progress(*columns: Any) -> Any:
    """A transient progress display on stderr (silent when stderr is not a terminal)."""
    from rich.progress import Progress

    console = _stderr()
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)


# --- import -----------------------------------------------------------------------------------

ServerOption = Annotated[str | None, typer.Option("--server", help="Server URL (needs --api-key).")]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="DOORCHECK_API_KEY", help="An API key with the write scope."),
]
ImportDbOption = Annotated[str | None, typer.Option("--db", help="Database URL to import into.")]
AtomicOption = Annotated[bool, typer.Option("--atomic", help="Import nothing if any row is bad.")]


@tools_app.command("import")
def import_file(
    file: Annotated[
        Path, typer.Argument(help="A CSV file (header row) or a JSON array.", show_default=False)
    ],
    event: Annotated[str, typer.Option("--event", help="The event id (evt_…).")],
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    db: ImportDbOption = None,
    atomic: AtomicOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    rejected: Annotated[
        Path | None,
        typer.Option("--rejected", help="Write the rows not imported (CSV) here, with why."),
    ] = None,
) -> None:
    """Import attendees (upsert by email or code) from a CSV or JSON file into an event.

    Exit code 0 when every row was imported, 1 when some rows (or the whole file) failed.
    """
    if (server is None) == (db is None):
        raise _usage("give either --server URL --api-key KEY, or --db URL")
    if server is not None and not api_key:
        raise _usage("--server needs --api-key (or $DOORCHECK_API_KEY)")
    content_type = _content_type(file)
    if not file.is_file():
        raise fail(f"no such file: {file}")
    if server is not None:
        result = _import_over_http(
            file, server.rstrip("/"), str(api_key), event, content_type, atomic
        )
    else:
        result = _import_into_db(file, db, event, content_type, atomic)
    _report(result, as_json)
    if rejected is not None and content_type == "text/csv" and result.get("errors"):
        from sync_server.services.import_upload import rejected_rows_csv

        text = _read(file).decode("utf-8-sig", "replace")
        rejected.write_text(rejected_rows_csv(text, result["errors"]), encoding="utf-8")
        typer.echo(f"rows not imported written to {rejected}", err=True)
    if result["failed"] or result["errors"]:
        raise typer.Exit(1)


def _import_over_http(
    file: Path, server: str, api_key: str, event: str, content_type: str, atomic: bool
) -> dict[str, Any]:
    import httpx
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    size = file.stat().st_size
    url = f"{server}/v1/events/{quote(event, safe='')}/attendees/import"
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": content_type,
        "Content-Length": str(size),
    }
    columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
    with _progress(*columns) as progress, file.open("rb") as fh:
        task = progress.add_task(f"uploading {file.name}", total=size)

        def chunks() -> Iterator[bytes]:
            while data := fh.read(256 * 1024):
                progress.advance(task, len(data))
                yield data
            progress.update(task, description="the server is importing")

        try:
            response = httpx.post(
                url,
                content=chunks(),
                headers=headers,
                params={"atomic": "true"} if atomic else None,
                timeout=httpx.Timeout(30, read=900),
            )
        except httpx.InvalidURL as exc:
            raise _usage(f"--server is not a usable URL: {exc}") from exc
        except httpx.TransportError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise fail(f"cannot reach the server at {server}: {reason}") from exc
    return _answer(response.status_code, response.content)


def _answer(status: int, content: bytes) -> dict[str, Any]:
    """The import result from the server's answer; an atomic 422 becomes a result of errors."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if status == 200 and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise fail(f"the server answered HTTP {status} without an explanation")
    details = error.get("details") or []
    if status == 422 and any(str(d.get("field", "")).startswith("row ") for d in details):
        return _atomic_failure(str(error.get("message", "")), details)
    raise fail(
        f"the server refused the import ({status} {error.get('code')}): "
        f"{error.get('message')}"
        + "".join(f"\n  {d.get('field')}: {d.get('message')}" for d in details[:MAX_SHOWN_ERRORS])
    )


def _atomic_failure(message: str, details: list[dict[str, Any]]) -> dict[str, Any]:
    errors = []
    for detail in details:
        where, _, name = str(detail.get("field", "")).partition(": ")
        row = where.removeprefix("row ")
        errors.append(
            {
                "row": int(row) if row.isascii() and row.isdigit() else 0,
                "field": name,
                "message": detail.get("message", ""),
            }
        )
    return {
        "object": "import_result",
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "failed": len({e["row"] for e in errors}),
        "errors": errors,
        "message": message,
    }


def _import_into_db(
    file: Path, db: str | None, event_id: str, content_type: str, atomic: bool
) -> dict[str, Any]:
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from sync_server.errors import ApiError
    from sync_server.models import Event
    from sync_server.services.import_upload import parse_upload
    from sync_server.services.imports import ImportOptions, import_attendees

    body = _read(file)
    engine = open_engine(db, migrate=True)
    try:
        with Session(engine, expire_on_commit=False) as session:
            event = session.get(Event, event_id)
            if event is None:
                raise fail(f"no such event: {event_id}")
            with _progress() as progress:
                upload = parse_upload(body, content_type)
                options = ImportOptions(atomic=atomic, progress=_progress_to(progress))
                result = import_attendees(
                    session,
                    event=event,
                    rows=upload.rows,
                    secret=settings_for(db).secret(),
                    options=options,
                )
        result.warnings[:0] = upload.warnings
        return result.public()
    except ApiError as exc:
        if exc.status == 422 and any(str(d["field"]).startswith("row ") for d in exc.details):
            return _atomic_failure(exc.message, exc.details)
        shown = "".join(f"\n  {d['field']}: {d['message']}" for d in exc.details[:MAX_SHOWN_ERRORS])
        raise fail(exc.message + shown) from exc
    except SQLAlchemyError as exc:
        raise fail(f"the database refused the import: {type(exc).__name__}") from exc
    finally:
        engine.dispose()


def _progress_to(progress: Any) -> ProgressCallback:
    tasks: dict[str, Any] = {}

    def advance(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(f"{phase} rows", total=total)
        progress.update(tasks[phase], completed=done)

    return advance


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    summary = Table(title="Import", show_header=False)
    for label in ("created", "updated", "unchanged", "failed"):
        summary.add_row(label, str(result.get(label, 0)))
    console.print(summary)
    if result.get("message"):
        console.print(Text(str(result["message"])))
    for warning in (result.get("warnings") or [])[:MAX_SHOWN_ERRORS]:
        console.print(Text("warning: " + str(warning)))
    errors = result.get("errors") or []
    if not errors:
        return
    table = Table("line", "column", "message", title="Rows not imported")
    for error in errors[:MAX_SHOWN_ERRORS]:
        line = error.get("line") or f"row {error['row']}"
        table.add_row(str(line), Text(str(error["field"])), Text(str(error["message"])))
    console.print(table)
    more = max(len(errors), int(result.get("failed") or 0)) - MAX_SHOWN_ERRORS
    if more > 0:
        console.print(f"… and {more} more (all of them: --rejected FILE or --json)")
