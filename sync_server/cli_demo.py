"""`doorcheck demo`: one command, nothing configured. An embedded server on SQLite in a demo
folder, a demo event with a few hundred attendees, a printable ticket sheet and an enrolled
device, then serve until interrupted.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from sync_server.cli_server import fail

__all__ = ["demo"]


def demo(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Server port.")] = 8000,
    web: Annotated[bool, typer.Option("--web", help="Open the scanner in the browser.")] = False,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Demo folder (recreated).")] = Path(
        "demo-data"
    ),
    attendees: Annotated[int, typer.Option(min=1, max=100_000, help="Demo attendees.")] = 300,
) -> None:
    """Embedded server + demo event + scanner; prints URLs, the admin key and the ticket sheet."""
    import uvicorn

    from sync_server.app import create_app
    from sync_server.cli_tools import write_tickets
    from sync_server.db import session_scope
    from sync_server.demo import seed_demo
    from sync_server.migrate import upgrade
    from sync_server.services.devices import create_enrolment, enroll
    from sync_server.settings import Settings

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
    with session_scope(app.state.engine) as session:
        device, token = enroll(
            session, code=enrolment.code, name="Demo gate", secret=app.state.secret
        )
    (data_dir / "device.token").write_text(token)
    typer.echo(f"server: {url}  (API docs: {url}/docs)")
    typer.echo(
        "scanner: not built yet (the Flet scanner app is a later issue); "
        f"scan online meanwhile: POST {url}/v1/checkpoints/{seeded.entrance_id}/scans"
    )
    typer.echo(f"admin API key: {seeded.api_key}")
    typer.echo(f"ticket sheet: {sheet}")
    typer.echo(
        f"event: {seeded.event_id}  entrance: {seeded.entrance_id}  "
        f"workshop: {seeded.workshop_id}  device: {device.id}"
    )
    typer.echo("press Ctrl+C to stop", err=True)
    del web  # the browser scanner arrives with the scanner app
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    except OSError as exc:  # port taken
        raise fail(f"cannot listen on port {port}: {exc.strerror or exc}") from exc
