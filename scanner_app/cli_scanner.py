"""`doorcheck scanner`: the Flet scanner app on this device's gate (desktop window, or the
browser with `--web`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["scanner"]


def scanner(
    web: Annotated[
        bool, typer.Option("--web", help="Serve the app to a browser instead of a window.")
    ] = False,
    camera: Annotated[
        str | None,
        typer.Option("--camera", metavar="INDEX|PATH", help="Camera index or a video file."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The gate's folder (cache, queue, credentials). Default: $DOORCHECK_DATA_DIR "
            "or ~/.local/share/doorcheck.",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port of the web app (default: 8550, or a free one)."),
    ] = None,
    lang: Annotated[
        str, typer.Option(envvar="DOORCHECK_LANG", help="Language at start: en or es.")
    ] = "en",
    verdict_seconds: Annotated[
        float,
        typer.Option(
            min=0.3,
            max=60,
            envvar="DOORCHECK_VERDICT_SECONDS",
            help="How long an admit verdict stays on screen.",
            hidden=True,
        ),
    ] = 1.5,
) -> None:
    """Open the scanner app: pair, choose a gate, scan with the camera or a handheld scanner."""
    from scanner_app.camera_feed import CameraFeed
    from scanner_app.gate import Gate
    from scanner_app.launch import PortTaken, place
    from scanner_app.ui.app import run
    from scanner_app.ui.shell import AppOptions

    try:
        spot = place(web=web, port=port)
    except PortTaken as exc:
        typer.echo(f"doorcheck: {exc} (--port)", err=True)
        raise typer.Exit(2) from None

    gate = Gate.open(data_dir, pin=os.environ.get("DOORCHECK_PIN") or None)  # else: asked on screen
    hub = CameraFeed(gate, camera) if camera is not None else None
    options = AppOptions(camera=hub, verdict_seconds=verdict_seconds, lang=lang)
    if spot.web:
        typer.echo(f"scanner: http://127.0.0.1:{spot.port}")
        if spot.why:
            typer.echo(f"({spot.why})", err=True)
    try:
        run(gate, web=spot.web, port=spot.port, options=options)
    finally:
        gate.close()


if __name__ == "__main__":
    typer.run(scanner)
