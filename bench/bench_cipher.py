"""How to encrypt a gate at rest, measured (issue 21): the same 100,000 attendee rows written in
pages of 5,000 and then looked up by an indexed ticket code, three ways:

- plain SQLite (what gates did before);
- SQLCipher (`sqlcipher3`: the whole file encrypted page by page, rows as plain SQL inside);
- field-level sealing (what gates do now): each row's personal fields in one AES-GCM blob bound
  to the row's id, the code looked up through an HMAC blind index, the hit opened.

Standalone on purpose: SQLCipher is not one of doorcheck's dependencies, so this runs in any
Python that has `cryptography` and `msgspec`, and measures SQLCipher where `sqlcipher3` (for
example the `sqlcipher3-binary` wheel) is installed:

    python -m venv /tmp/cipherenv && /tmp/cipherenv/bin/pip install sqlcipher3-binary \\
        cryptography msgspec && /tmp/cipherenv/bin/python bench/bench_cipher.py
"""

from __future__ import annotations

import argparse
import hmac
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PAGE = 5_000
SCHEMA = (
    "CREATE TABLE attendees (id TEXT PRIMARY KEY, event_id TEXT NOT NULL, code TEXT,"
    " first_name TEXT, last_name TEXT, email TEXT, status TEXT NOT NULL, sealed BLOB)",
    "CREATE INDEX ix_code ON attendees (event_id, code)",
)


def rows(n: int) -> list[tuple[str, str, str, str, str]]:
    return [
        (f"att_{i:09d}", f"C-{i}", f"Person{i}", f"Bench{i % 977}", f"p{i}@example.com")
        for i in range(n)
    ]


class Plain:
    name = "plain SQLite"

    def __init__(self, path: Path, connect: Callable[..., Any] = sqlite3.connect) -> None:
        self.conn = connect(str(path), isolation_level=None)
        self.prepare()
        for statement in SCHEMA:
            self.conn.execute(statement)

    def prepare(self) -> None:
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")

    def write(self, page: list[tuple[str, str, str, str, str]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "INSERT OR REPLACE INTO attendees VALUES (?, 'evt', ?, ?, ?, ?, 'valid', NULL)", page
        )
        self.conn.execute("COMMIT")

    def lookup(self, code: str) -> Any:
        return self.conn.execute(
            "SELECT id, first_name, last_name, email FROM attendees"
            " WHERE event_id = 'evt' AND code = ?",
            (code,),
        ).fetchone()


class Cipher(Plain):
    name = "SQLCipher (whole file)"

    def __init__(self, path: Path) -> None:
        import sqlcipher3  # type: ignore[import-not-found]

        super().__init__(path, sqlcipher3.dbapi2.connect)

    def prepare(self) -> None:
        self.conn.execute(f"PRAGMA key = \"x'{os.urandom(32).hex()}'\"")
        super().prepare()


class Fields(Plain):
    name = "field-level AES-GCM + blind index"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.aead = AESGCM(os.urandom(32))
        self.index = os.urandom(32)
        self.pack = msgspec.msgpack.Encoder().encode
        self.unpack = msgspec.msgpack.Decoder().decode

    def tag(self, code: str) -> bytes:
        return hmac.digest(self.index, code.encode(), "sha256")[:8]

    def seal(self, row: tuple[str, str, str, str, str]) -> bytes:
        nonce = os.urandom(12)
        return nonce + self.aead.encrypt(nonce, self.pack(row[1:]), row[0].encode())

    def write(self, page: list[tuple[str, str, str, str, str]]) -> None:
        sealed = [(r[0], self.tag(r[1]), self.seal(r)) for r in page]
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "INSERT OR REPLACE INTO attendees VALUES (?, 'evt', ?, NULL, NULL, NULL, 'valid', ?)",
            sealed,
        )
        self.conn.execute("COMMIT")

    def lookup(self, code: str) -> Any:
        for attendee_id, sealed in self.conn.execute(
            "SELECT id, sealed FROM attendees WHERE event_id = 'evt' AND code = ?",
            (self.tag(code),),
        ):
            fields = self.unpack(self.aead.decrypt(sealed[:12], sealed[12:], attendee_id.encode()))
            if fields[0] == code:  # a tag narrows; the opened row decides
                return (attendee_id, *fields[1:])
        return None


def measure(kind: type[Plain], data: list[Any], lookups: list[str], work: Path) -> str:
    applies, per_lookup = [], []
    for run in range(3):
        store = kind(work / f"{kind.__name__}-{run}.db")
        t = time.perf_counter()
        for start in range(0, len(data), PAGE):
            store.write(data[start : start + PAGE])
        applies.append(time.perf_counter() - t)
        t = time.perf_counter()
        for code in lookups:
            assert store.lookup(code) is not None
        per_lookup.append((time.perf_counter() - t) / len(lookups))
    return (
        f"{kind.name:<36} apply {', '.join(f'{a:.2f}' for a in applies)} s;"
        f" lookup+read p50 of runs {statistics.median(per_lookup) * 1e6:.1f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args()
    data = rows(args.attendees)
    lookups = [data[i][1] for i in range(0, args.attendees, max(1, args.attendees // args.lookups))]
    kinds: list[type[Plain]] = [Plain, Fields]
    try:
        import sqlcipher3  # type: ignore[import-not-found]  # noqa: F401

        kinds.insert(1, Cipher)
    except ImportError:
        print("sqlcipher3 is not installed here: SQLCipher not measured")
    with tempfile.TemporaryDirectory(prefix="dc-bench-cipher-") as folder:
        print(f"{args.attendees:,} attendees in pages of {PAGE:,}, {len(lookups):,} lookups")
        for kind in kinds:
            print(measure(kind, data, lookups, Path(folder)))


if __name__ == "__main__":
    main()
