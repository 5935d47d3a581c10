"""A timing trace for `bench/bench_ui.py`: with `DOORCHECK_TRACE_FILE` set, the app appends one
JSON line per camera frame, verdict and UI-loop heartbeat to that file (wall-clock `t`, so a
browser on the same machine can be compared with it). Unset, nothing is traced.

    trace("verdict_sent", name="Ana Ruiz")   # {"t": 1764000000.123, "event": "verdict_sent", …}
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["HEARTBEAT_SECONDS", "heartbeat", "trace", "tracing"]

ENV = "DOORCHECK_TRACE_FILE"
HEARTBEAT_SECONDS = 0.05

_lock = threading.Lock()
_file: IO[str] | None = None
_opened = False


def _sink() -> IO[str] | None:
    global _file, _opened
    if not _opened:
        with _lock:
            if not _opened:
                path = os.environ.get(ENV)
                _file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
                _opened = True
    return _file


def tracing() -> bool:
    return _sink() is not None


def trace(event: str, **fields: Any) -> None:
    """Append one line `{"t": time.time(), "event": event, **fields}` when tracing."""
    sink = _sink()
    if sink is None:
        return
    line = json.dumps({"t": time.time(), "event": event, **fields}, ensure_ascii=False)
    with _lock:
        sink.write(line + "\n")
        sink.flush()


async def heartbeat(running: Callable[[], bool]) -> None:
    """Trace how late the UI loop wakes up from a 50 ms sleep (`lag_ms`) while `running()`."""
    loop = asyncio.get_running_loop()
    while running():
        start = loop.time()
        await asyncio.sleep(HEARTBEAT_SECONDS)
        trace("heartbeat", lag_ms=round((loop.time() - start - HEARTBEAT_SECONDS) * 1000, 2))
