"""`doorcheck demo`: one command, nothing configured. An embedded server on SQLite in a demo
folder, a demo event with a few hundred attendees, a printable ticket sheet and an enrolled
device, then serve until interrupted.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from sync_server.cli_server import fail

DEMO_PIN = "2468"  # the demo gate's door PIN on a machine without a secure keyring

__all__ = ["demo"]


def demo(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Server port.")] = 8000,
    web: Annotated[bool, typer.Option("--web", help="Open the scanner in the browser.")] = False,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Demo folder (recreated).")] = Path(
        "demo-data"
    ),
    attendees: Annotated[int, typer.Option(min=1, max=100_000, help="Demo attendees.")] = 300,
    camera: Annotated[
        str | None,
        typer.Option("--camera", metavar="INDEX|PATH", help="Camera index or a video file."),
    ] = None,
    scanner_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Port of the web scanner (default: 8550, or a free one)."
        ),
    ] = None,
    no_scanner: Annotated[
        bool, typer.Option("--no-scanner", help="Only the server (print and serve).")
    ] = False,
) -> None:
    """Embedded server + demo event + scanner; prints URLs, the admin key and the ticket sheet."""
    import threading

    import uvicorn

    from scanner_app.launch import PortTaken, place, port_free
    from sync_server.app import create_app
    from sync_server.cli_tickets import write_tickets
    from sync_server.db import session_scope
    from sync_server.demo import seed_demo
    from sync_server.migrate import upgrade
    from sync_server.services.devices import create_enrolment
    from sync_server.settings import Settings

    if not port_free(port):
        raise fail(f"port {port} is taken (another program listens there): use --port")
    try:
        spot = None if no_scanner else place(web=web, port=scanner_port, avoid=frozenset({port}))
    except PortTaken as exc:
        raise fail(f"{exc} (--scanner-port)") from None
    data_dir = data_dir.resolve()
    if (data_dir / "doorcheck.db").exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        db_url=f"sqlite:///{data_dir / 'doorcheck.db'}", data_dir=data_dir, public_url=url
    )
    app = create_app(settings)
    upgrade(app.state.engine)
    seeded = seed_demo(app.state.engine, app.state.secret, attendees=attendees)
    _, sheet = write_tickets(app.state.engine, seeded.event_id, data_dir / "tickets")
    with session_scope(app.state.engine) as session:
        enrolment = create_enrolment(
            session,
            organization_id=seeded.organization_id,
            name="Demo gate",
            server_url=url,
            secret=app.state.secret,
        )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
        )
    )
    thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise fail(f"cannot start the server on port {port} (is it taken?)")
        thread.join(0.05)

    typer.echo(f"server: {url}  (API docs: {url}/docs)")
    if spot is None:
        typer.echo("scanner: not started (--no-scanner)")
    elif spot.web:
        typer.echo(f"scanner: http://127.0.0.1:{spot.port}")
        if spot.why:
            typer.echo(f"({spot.why})", err=True)
    else:
        typer.echo("scanner: desktop window")
    typer.echo(f"admin API key: {seeded.api_key}")
    typer.echo(f"ticket sheet: {sheet}")
    typer.echo(
        f"event: {seeded.event_id}  entrance: {seeded.entrance_id}  "
        f"workshop: {seeded.workshop_id}  enrolment code: {enrolment.code}"
    )
    typer.echo("press Ctrl+C to stop", err=True)
    try:
        if spot is None:
            while thread.is_alive():
                thread.join(0.5)
        else:
            _open_scanner(
                url, enrolment.code, seeded, data_dir / "scanner", spot.web, spot.port, camera
            )
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        thread.join(10)


def _open_scanner(
    url: str,
    code: str,
    seeded: object,
    folder: Path,
    web: bool,
    port: int,
    camera: str | None,
) -> None:
    """Pair a real gate with the demo server over HTTP, put it on the entrance, open the app."""
    from scanner_app.camera_feed import CameraFeed
    from scanner_app.gate import Gate
    from scanner_app.ui.app import run
    from scanner_app.ui.shell import AppOptions
    from scanner_app.vault import secure_keyring

    pin = os.environ.get("DOORCHECK_PIN") or (None if secure_keyring() else DEMO_PIN)
    where = "the system keyring" if pin is None else f"door PIN {pin}"
    typer.echo(f"scanner data: sealed, its key under {where}")
    gate = Gate.open(folder, pin=pin)
    try:
        gate.pair(url, code, "Demo gate")
        gate.configure(
            seeded.event_id,  # type: ignore[attr-defined]
            seeded.entrance_id,  # type: ignore[attr-defined]
            "in",
            "Demo",
        )
        gate.sync_now()
        hub = CameraFeed(gate, camera) if camera is not None else None
        run(gate, web=web, port=port, options=AppOptions(camera=hub))
    finally:
        gate.close()
