"""`doorcheck decode IMAGE... [--json]`: what the scanner's decoder reads in each image (SPEC 9).
The camera stack is imported when the command runs, not when the CLI starts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["decode"]


def decode(
    images: Annotated[
        list[Path], typer.Argument(help="Image files (PNG, JPEG, …).", metavar="IMAGE")
    ],
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help='One JSON line per image: {"image", "codes": [{"text", "engine"}], "ms"}; '
            'an unreadable file gives "error" instead of "codes".',
        ),
    ] = False,
) -> None:
    """What the decoder reads in each image, and which engine read it.

    Exit code: 0 when every file is a readable image (read code or not), 1 when any is not.
    """
    from scanner_app.decoder import Decoder
    from scanner_app.frames import read_image

    decoder = Decoder()
    unreadable = 0
    for path in images:
        result: dict[str, Any] = {"image": str(path)}
        frame = read_image(path)
        if frame is None:
            unreadable += 1
            result["error"] = "no such file" if not path.exists() else "not a readable image"
        else:
            decoder.reset()  # unrelated images: the last hit's region means nothing here
            started = time.perf_counter()
            found = decoder.decode(frame)
            elapsed = (time.perf_counter() - started) * 1000
            result["codes"] = [{"text": d.text, "engine": d.engine} for d in found]
            result["ms"] = round(elapsed, 1)
        typer.echo(json.dumps(result) if json_ else _line(result))
    if unreadable:
        raise typer.Exit(1)


def _line(result: dict[str, Any]) -> str:
    image = result["image"]
    if "error" in result:
        return f"{image}: error: {result['error']}"
    codes = result["codes"]
    if not codes:
        return f"{image}: nothing read ({result['ms']} ms)"
    shown = "; ".join(f"{_printable(c['text'])} [{c['engine']}]" for c in codes)
    return f"{image}: {shown} ({result['ms']} ms)"


def _printable(text: str) -> str:
    """Control characters escaped, so a binary code cannot garble the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
