"""Organizer tools: `import` (an attendee list into an event, over HTTP or straight into a
database) and `tickets` (one QR PNG per attendee and a printable sheet).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from sync_server.cli_server import DbOption, fail, settings_for

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.engine import Engine

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


def _engine(db: str | None, *, migrate: bool) -> Engine:
    """An engine on `--db` (migrated first when `migrate`); one clear line when unreachable."""
    from sqlalchemy.exc import OperationalError

    from sync_server.db import make_engine
    from sync_server.migrate import upgrade

    url = settings_for(db).db_url
    if url.startswith("sqlite:///") and not migrate and not Path(url[10:]).exists():
        raise fail(f"no database at {url[10:]}")
    engine = make_engine(url)
    if migrate:
        try:
            upgrade(engine)
        except OperationalError as exc:
            engine.dispose()
            raise fail(f"cannot reach the database: {str(exc.orig).strip()[:200]}") from exc
    return engine


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
                "row": int(row) if row.isdigit() else 0,
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
    engine = _engine(db, migrate=True)
    try:
        with Session(engine, expire_on_commit=False) as session:
            event = session.get(Event, event_id)
            if event is None:
                raise fail(f"no such event: {event_id}")
            with _progress() as progress:
                rows = parse_upload(body, content_type)
                options = ImportOptions(atomic=atomic, progress=_progress_to(progress))
                result = import_attendees(
                    session,
                    event=event,
                    rows=rows,
                    secret=settings_for(db).secret(),
                    options=options,
                )
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
    errors = result.get("errors") or []
    if not errors:
        return
    table = Table("row", "field", "message", title="Rows not imported")
    for error in errors[:MAX_SHOWN_ERRORS]:
        table.add_row(str(error["row"]), Text(str(error["field"])), Text(str(error["message"])))
    console.print(table)
    more = max(len(errors), int(result.get("failed") or 0)) - MAX_SHOWN_ERRORS
    if more > 0:
        console.print(f"… and {more} more")


# --- tickets ----------------------------------------------------------------------------------


@tools_app.command("tickets")
def tickets(
    event: Annotated[str, typer.Option("--event", help="The event id (evt_…).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and tickets.html.")],
    db: DbOption = None,
) -> None:
    """Write one QR PNG per attendee (<attendee_id>.png) and a printable sheet, tickets.html."""
    engine = _engine(db, migrate=False)
    try:
        count, sheet = write_tickets(engine, event, out)
    finally:
        engine.dispose()
    typer.echo(f"wrote {count} tickets to {out}", err=True)
    typer.echo(str(sheet.resolve()))


def write_tickets(engine: Engine, event: str, out: Path) -> tuple[int, Path]:
    """A PNG per attendee and the printable `tickets.html` in `out`; answers (count, sheet)."""
    from sqlmodel import Session, select

    from sync_server.models import Attendee, Event, TicketType

    with Session(engine) as session:
        found = session.get(Event, event)
        if found is None:
            raise fail(f"no such event: {event}")
        types = {
            t.id: t for t in session.exec(select(TicketType).where(TicketType.event_id == event))
        }
        people = session.exec(
            select(Attendee)
            .where(Attendee.event_id == event)
            .order_by(Attendee.last_name, Attendee.first_name, Attendee.id)
        ).all()
    try:
        out.mkdir(parents=True, exist_ok=True)
        cards = [_card(out, person, types[person.ticket_type_id], found.name) for person in people]
        sheet = out / "tickets.html"
        sheet.write_text(_sheet(found.name, cards), encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write to {out}: {exc.strerror or exc}") from exc
    return len(cards), sheet


def _png(text: str) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


def _card(out: Path, person: Any, ticket_type: Any, event_name: str) -> str:
    png = _png(person.qr)
    (out / f"{person.id}.png").write_bytes(png)
    inline = base64.b64encode(png).decode()
    name = html.escape(f"{person.first_name} {person.last_name}")
    kind = html.escape(ticket_type.name) + (' <b class="vip">VIP</b>' if ticket_type.is_vip else "")
    status = "" if person.status == "valid" else f'<p class="void">{html.escape(person.status)}</p>'
    return (
        f'<figure class="card"><img src="data:image/png;base64,{inline}"'
        f' alt="ticket QR of {name}"><figcaption><strong>{name}</strong>'
        f"<span>{kind}</span><small>{html.escape(event_name)}</small>{status}"
        f"<code>{html.escape(person.id)}</code></figcaption></figure>"
    )


_STYLE = """
*{box-sizing:border-box}body{margin:0;font:15px/1.3 system-ui,sans-serif;color:#111;background:#eee}
header{padding:12px 16px}h1{margin:0;font-size:20px}
.sheet{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px;padding:12px}
.card{margin:0;background:#fff;border:1px solid #bbb;border-radius:8px;padding:10px;
text-align:center;break-inside:avoid;page-break-inside:avoid}
.card img{width:100%;max-width:320px;image-rendering:pixelated;display:block;margin:0 auto}
figcaption{display:flex;flex-direction:column;gap:2px}strong{font-size:17px}
.vip{background:#111;color:#fff;border-radius:4px;padding:0 4px;font-size:12px}
.void{color:#b00;font-weight:700;text-transform:uppercase;margin:4px 0}
code{font-size:10px;color:#666}small{color:#444}
@page{size:A4;margin:10mm}
@media print{body{background:#fff}header{display:none}
.sheet{grid-template-columns:repeat(3,1fr);gap:6mm;padding:0}
.card{border:1px dashed #999;border-radius:0}.card img{width:48mm}}
"""


def _sheet(event_name: str, cards: list[str]) -> str:
    title = html.escape(f"{event_name}: tickets")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{title}</h1><p>{len(cards)} tickets. Print on A4, or open on a phone "
        f"and show a code to the scanner.</p></header>"
        f'<main class="sheet">{"".join(cards)}</main></body></html>\n'
    )
