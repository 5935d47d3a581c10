"""Waking dispatchers on PostgreSQL: the outbox NOTIFYs `doorcheck_webhooks` in the transaction
that writes a message, each dispatcher LISTENs on its own connection; polling stays the fallback.

    notify(conn)                          # in the writing transaction; a no-op on SQLite
    Listener(engine, wake).start(stop)    # sets `wake` on every notification
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Connection, Engine, text

from sync_server.direct import Direct

__all__ = ["CHANNEL", "Listener", "notify"]

log = logging.getLogger("doorcheck.webhooks")

CHANNEL = "doorcheck_webhooks"
_NOTIFY = Direct(text(f"NOTIFY {CHANNEL}"))
RECONNECT_AFTER_S = 5.0


def notify(conn: Connection) -> None:
    """Wake every listening dispatcher when this transaction commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        _NOTIFY.run(conn)


class Listener:
    """A thread that LISTENs on one dedicated connection and sets `wake` for each notification;
    it reconnects after an error, and dispatchers keep polling meanwhile."""

    def __init__(self, engine: Engine, wake: threading.Event) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.wake = wake
        self.listening = threading.Event()
        self.thread: threading.Thread | None = None

    @staticmethod
    def wanted(engine: Engine) -> bool:
        return engine.dialect.name == "postgresql"

    def start(self, stop: threading.Event) -> None:
        self.thread = threading.Thread(
            target=self._run, args=(stop,), name="webhook-listener", daemon=True
        )
        self.thread.start()

    def join(self, timeout: float = 5.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        import psycopg

        while not stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self.wake.set()  # whatever was committed before we listened
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.wake.set()
            except psycopg.Error as exc:
                log.warning("webhook LISTEN connection lost (%s); polling meanwhile", exc)
            finally:
                self.listening.clear()
            stop.wait(RECONNECT_AFTER_S)
