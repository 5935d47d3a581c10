"""The server's log lines: plain text or one JSON object per line (`--log-format json`), each
carrying the request id of the request it was written for, configured the same way in every
worker process (uvicorn applies `uvicorn_log_config` in each).

    configure("json")
    REQUEST_ID.set("req_123")
"""

from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "REQUEST_ID",
    "JsonFormatter",
    "LogFormat",
    "PlainFormatter",
    "configure",
    "uvicorn_log_config",
]

REQUEST_ID: ContextVar[str | None] = ContextVar("doorcheck_request_id", default=None)
# what an access line (or any line given `extra=`) adds to a JSON object
FIELDS = ("method", "path", "route", "status", "duration_ms", "client", "url")


class LogFormat(StrEnum):
    PLAIN = "plain"
    JSON = "json"


def _request_id(record: logging.LogRecord) -> str | None:
    return getattr(record, "request_id", None) or REQUEST_ID.get()


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "request_id"?, …, "exc"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id(record)
        if request_id:
            line["request_id"] = request_id
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """`2026-05-01 19:02:03,123 INFO doorcheck.access: … [request_id]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = _request_id(record)
        return f"{line} [{request_id}]" if request_id else line


def uvicorn_log_config(fmt: LogFormat) -> dict[str, Any]:
    """A `logging.config.dictConfig` for every process: our INFO lines and uvicorn's warnings on
    stderr in `fmt`; httpx's line per webhook attempt only when it is a warning."""
    formatter = JsonFormatter if fmt is LogFormat.JSON else PlainFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"doorcheck": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "doorcheck",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {
            **{
                name: {"level": "WARNING", "handlers": [], "propagate": True}
                for name in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access")
            },
        },
    }


def configure(fmt: LogFormat | str = LogFormat.PLAIN) -> None:
    logging.config.dictConfig(uvicorn_log_config(LogFormat(fmt)))
