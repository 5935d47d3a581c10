"""`doorcheck tickets`: one QR PNG per attendee of an event and a printable sheet."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sync_server.cli_server import DbOption, fail, open_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["tickets", "write_tickets"]


def tickets(
    event: Annotated[str, typer.Option("--event", help="The event id (evt_…).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and tickets.html.")],
    db: DbOption = None,
) -> None:
    """Write one QR PNG per attendee (<attendee_id>.png) and a printable sheet, tickets.html."""
    engine = open_engine(db, migrate=False)
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
