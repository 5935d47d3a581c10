"""The `doorcheck` command line: one Typer app whose sub-commands come from the server's and the
scanner's own command modules (each imports its heavy parts lazily, so `doorcheck --help` stays
fast and a server host never imports the camera stack).
"""

from __future__ import annotations

from typing import Annotated

import typer

from doorcheck import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="doorcheck",
    help="Offline-first door check-in: sync server, scanner gate and tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"doorcheck {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """doorcheck: scan tickets at the door, online or not."""


def _register() -> None:
    from doorcheck.demo import demo
    from scanner_app.cli_decode import decode
    from scanner_app.cli_gate import pair, scan
    from scanner_app.cli_scanner import scanner
    from sync_server.cli_devices import devices_app
    from sync_server.cli_export import export
    from sync_server.cli_server import db_app, init, server
    from sync_server.cli_tickets import tickets
    from sync_server.cli_tools import tools_app  # import
    from sync_server.cli_worker import worker

    app.command("demo")(demo)
    app.command("init")(init)
    app.command("server")(server)
    app.command("worker")(worker)
    app.command("pair")(pair)
    app.command("scan")(scan)
    app.command("scanner")(scanner)
    app.command("decode")(decode)
    app.add_typer(db_app, name="db")
    app.add_typer(tools_app)
    app.command("tickets")(tickets)
    app.command("export")(export)
    app.add_typer(devices_app, name="devices")


_register()


def main() -> None:
    app()
