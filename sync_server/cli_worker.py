"""`doorcheck worker`: a webhook dispatcher process that shares the outbox with the servers."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sync_server.cli_server import DbOption, _redacted, configure_logging, fail, settings_for
from sync_server.db import make_engine

__all__ = ["worker"]

CHILD_NICENESS = 10


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
    parent = os.environ.get("DOORCHECK_WORKER_PARENT")
    if parent:  # started by `doorcheck server`: stop when it is gone, even if it was killed
        threading.Thread(target=_orphan_watch, args=(int(parent), stop), daemon=True).start()
        # and yield the CPU to the API it serves: delivering is background work, a scan at the
        # door is not (the scheduler still gives the worker every core the API leaves idle)
        os.nice(CHILD_NICENESS)
    dispatcher = Dispatcher(engine, settings)
    logging.getLogger("doorcheck.webhooks").info("webhook worker started")
    try:
        dispatcher.run_forever(stop)
    finally:
        dispatcher.close()
        engine.dispose()


def _orphan_watch(parent: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if os.getppid() != parent:
            logging.getLogger("doorcheck.webhooks").info("the server is gone; stopping")
            stop.set()
