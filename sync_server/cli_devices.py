"""`doorcheck devices create|list|revoke|wipe`: scanner enrolment for admins in a terminal, the
commands and what they print (the server or database they work on: `cli_device_registry`).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import typer

from sync_server.cli_device_registry import DEFAULT_SERVER_URL, Source, open_registry, usage

__all__ = ["devices_app"]

devices_app = typer.Typer(
    help="Enrol, list, revoke and wipe scanner devices.", no_args_is_help=True
)

ServerOption = Annotated[
    str | None, typer.Option("--server", help="Server URL (needs --api-key).", show_default=False)
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="DOORCHECK_API_KEY",
        help="An API key with the admin scope.",
        show_default=False,
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL to work on directly, instead of --server.", show_default=False
    ),
]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="With --db: the organization (org_…) when the database holds several.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


# --- commands ---------------------------------------------------------------------------------


@devices_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What the device is called (e.g. Gate A).")],
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    db: DbOption = None,
    org: OrgOption = None,
    server_url: Annotated[
        str | None,
        typer.Option(
            "--server-url",
            help="With --db: the server URL scanners pair with "
            f"(default: $DOORCHECK_PUBLIC_URL or {DEFAULT_SERVER_URL}).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a one-time enrolment code (valid 24 h) and show its pairing QR."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise usage("--name must be 1 to 200 characters")
    with open_registry(Source(server, api_key, db, org, server_url)) as registry:
        enrolment = registry.create(name)
    if as_json:
        typer.echo(json.dumps(enrolment))
        return
    _show_enrolment(enrolment)


@devices_app.command("list")
def list_devices(
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    db: DbOption = None,
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """List every device: status, last sync, app version and clock offset."""
    with open_registry(Source(server, api_key, db, org)) as registry:
        devices = registry.devices()
    if as_json:
        typer.echo(json.dumps(devices))
        return
    _show_devices(devices)


@devices_app.command("revoke")
def revoke(
    device_id: Annotated[str, typer.Argument(help="The device id (dev_…).", show_default=False)],
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    db: DbOption = None,
    org: OrgOption = None,
) -> None:
    """Revoke a device: its token stops working at once and its enrolment code too."""
    with open_registry(Source(server, api_key, db, org)) as registry:
        registry.revoke(device_id)
    typer.echo(f"revoked {device_id}")


@devices_app.command("wipe")
def wipe(
    device_id: Annotated[str, typer.Argument(help="The device id (dev_…).", show_default=False)],
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    db: DbOption = None,
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Order a lost device to erase its data: at its next contact it pushes nothing more, erases
    its attendees, readings and key, and confirms (see `devices list`)."""
    with open_registry(Source(server, api_key, db, org)) as registry:
        device = registry.wipe(device_id)
    if as_json:
        typer.echo(json.dumps(device))
        return
    if device.get("wipe_confirmed_at"):
        typer.echo(f"{device_id} already {_wipe_state(device)}")
        return
    typer.echo(
        f"wipe of {device_id} requested {_when(device.get('wipe_requested_at'))}: "
        "it erases its data at its next contact"
    )


# --- output -----------------------------------------------------------------------------------


def terminal_qr(text: str) -> str:
    """`text` as a QR of Unicode half blocks (light modules drawn, for dark terminals)."""
    import segno

    buffer = io.StringIO()
    segno.make_qr(text, error="m").terminal(out=buffer, compact=True)
    return buffer.getvalue()


def _when(stamp: str | None, *, never: str = "never") -> str:
    if not stamp:
        return never
    moment = datetime.fromisoformat(stamp).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _show_enrolment(enrolment: dict[str, Any]) -> None:
    query = parse_qs(urlsplit(enrolment["pairing_uri"]).query)
    server = (query.get("server") or ["URL"])[0]
    typer.echo(f"device:          {enrolment['device_id']}")
    typer.echo(f"enrolment code:  {enrolment['enrollment_code']}  (works once)")
    typer.echo(f"expires:         {_when(enrolment['expires_at'])}")
    typer.echo(f"pairing URI:     {enrolment['pairing_uri']}")
    typer.echo("")
    typer.echo(terminal_qr(enrolment["pairing_uri"]), nl=False)
    typer.echo(
        f"Scan this QR in the doorcheck scanner, or run:\n"
        f"  doorcheck pair --server {server} --code {enrolment['enrollment_code']}"
    )


def _status(device: dict[str, Any]) -> Any:
    from rich.text import Text

    status = str(device.get("status"))
    expires = device.get("enrollment_expires_at")
    if status == "pending" and expires and datetime.fromisoformat(expires) < datetime.now(UTC):
        return Text("pending (code expired)", style="dim")
    style = {"active": "green", "pending": "yellow", "revoked": "red"}.get(status, "")
    return Text(status, style=style)


def _wipe_state(device: dict[str, Any]) -> str:
    """Where the device's wipe stands, in one line ("—" when none was asked or confirmed)."""
    confirmed, requested = device.get("wipe_confirmed_at"), device.get("wipe_requested_at")
    if confirmed:
        lost = device.get("pending_uploads") or 0
        return f"wiped {_when(confirmed)} ({device.get('wipe_reason')}, {lost} uploads lost)"
    if requested:
        return f"requested {_when(requested)}, not yet confirmed"
    return "—"


def _offset(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "—"
    if abs(milliseconds) < 1000:
        return f"{milliseconds:+d} ms"
    return f"{milliseconds / 1000:+.1f} s"


def _show_devices(devices: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not devices:
        console.print("No devices yet. Enrol one with: doorcheck devices create --name NAME")
        return
    table = Table(title=f"Devices ({len(devices)})")
    table.add_column("id", no_wrap=True, min_width=max(len(str(d["id"])) for d in devices))
    for header in ("name", "status", "last seen", "app version", "clock offset", "wipe"):
        table.add_column(header)
    for device in devices:
        table.add_row(
            Text(str(device["id"])),
            Text(str(device["name"])),
            _status(device),
            _when(device.get("last_seen_at")),
            Text(device.get("app_version") or "—"),
            _offset(device.get("clock_offset_ms")),
            Text(_wipe_state(device)),
        )
    console.print(table)
