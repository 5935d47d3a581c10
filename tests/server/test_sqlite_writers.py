"""SQLite write transactions from several connections (and processes): `BEGIN IMMEDIATE` waits
for the lock by retrying every millisecond or less, then falls back to SQLite's own busy
handler, and every connection keeps its busy timeout whatever happened."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from sync_server import db


def _busy_timeout(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar())


def test_writers_take_turns_and_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE n (who TEXT, k INTEGER)"))
    # another process holds the write lock for a while, again and again
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, time, sys\n"
            f"c = sqlite3.connect({str(tmp_path / 'w.db')!r}, isolation_level=None)\n"
            "c.execute('PRAGMA busy_timeout=30000')\n"
            "for k in range(40):\n"
            "    c.execute('BEGIN IMMEDIATE'); c.execute('INSERT INTO n VALUES (?, ?)', ('p', k))\n"
            "    time.sleep(0.01); c.execute('COMMIT'); time.sleep(0.002)\n",
        ]
    )

    def write(who: str) -> None:
        for k in range(100):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO n VALUES (:w, :k)"), {"w": who, "k": k})

    threads = [threading.Thread(target=write, args=(f"t{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert holder.wait(60) == 0
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT who, count(*) FROM n GROUP BY who")).all())
    assert counts == {"p": 40, "t0": 100, "t1": 100, "t2": 100}
    assert _busy_timeout(engine) == db.BUSY_TIMEOUT_MS
    engine.dispose()


def test_a_lock_held_too_long_ends_in_sqlalchemys_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "FAST_BUSY_S", 0.05)
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 200)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    other = db.make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    with other.begin() as holding:
        holding.execute(text("INSERT INTO t VALUES (1)"))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"), engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        waited = time.monotonic() - started
    # the fast retries, then SQLite's own wait of the busy timeout
    assert waited >= 0.05 + 0.2
    assert _busy_timeout(engine) == 200
    with engine.begin() as conn:  # and the lock is taken once it is free
        conn.execute(text("INSERT INTO t VALUES (3)"))
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2
    engine.dispose()
    other.dispose()


def test_read_transactions_do_not_take_the_write_lock(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    reader = engine.execution_options(sqlite_immediate=False)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    with engine.begin() as writing:
        writing.execute(text("INSERT INTO t VALUES (1)"))
        with reader.connect() as conn:  # a reader is not blocked by the writer
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()


def _wal_frames(path: Path) -> int:
    """Frames in the WAL file now (its size, header and frame headers taken off)."""
    wal = path.with_name(path.name + "-wal")
    return (wal.stat().st_size - 32) // (4096 + 24) if wal.exists() else 0


def test_the_api_engine_leaves_checkpoints_to_its_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = db.make_engine(f"sqlite:///{path}", checkpoints=False)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    for _ in range(30):  # ~12,000 pages: past SQLite's auto-checkpoint threshold
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 3000}] * 500)
    assert _wal_frames(path) > db.WAL_AUTOCHECKPOINT, "no commit checkpointed"
    checkpointer = db.Checkpointer(engine, every=0.05)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while checkpointer.last is None and time.monotonic() < deadline:
            time.sleep(0.02)
        busy, frames, copied = checkpointer.last or (1, 0, 0)
        assert busy == 0 and frames > db.WAL_AUTOCHECKPOINT and copied == frames
        with engine.begin() as conn:  # the next writer starts the WAL over
            conn.execute(text("INSERT INTO t VALUES ('z')"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 15_001
    finally:
        checkpointer.stop()
    engine.dispose()
    other = db.make_engine(f"sqlite:///{tmp_path / 'd.db'}")  # others checkpoint themselves
    with other.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == db.WAL_AUTOCHECKPOINT
    other.dispose()
