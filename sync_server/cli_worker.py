"""`doorcheck worker`: a webhook dispatcher process that shares the outbox with the servers."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sync_server.cli_server import DbOption, _redacted, configure_logging, fail, settings_for
from sync_server.db import make_engine

__all__ = ["worker"]


def worker(db: DbOption = None) -> None:
    """Deliver webhooks from the outbox until SIGTERM or Ctrl-C (run as many as you like)."""
    from sync_server.webhooks.dispatch import Dispatcher

    settings = settings_for(db)
    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM webhook_deliveries LIMIT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        first = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        raise fail(f"cannot use the database at {_redacted(settings.db_url)}: {first}") from exc
    configure_logging()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    dispatcher = Dispatcher(engine, settings)
    logging.getLogger("doorcheck.webhooks").info("webhook worker started")
    try:
        dispatcher.run_forever(stop)
    finally:
        dispatcher.close()
        engine.dispose()
