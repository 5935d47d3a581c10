"""Statements compiled by SQLAlchemy once per dialect and run on the driver's own cursor.

For the statements the webhook outbox runs most (in every scan's transaction, and in every
dispatcher turn while it holds SQLite's write lock), where SQLAlchemy's per-statement and
per-row work (an execution context, each bind and result value processed through several
layers: 0.1-0.2 ms a statement and tens of microseconds a row on these machines) costs more
than the database does. The SQL and each value's bind processing are SQLAlchemy's own, compiled
for the connection's dialect; the statement runs in the connection's open transaction. On a
connection that has not begun one, the ordinary `conn.execute` runs instead, so nothing ever
runs outside the caller's transaction.

    INSERT_MESSAGES = Direct(insert(MESSAGES))      # every column, each row gives them all
    INSERT_MESSAGES.many(conn, [{"id": "msg_…", "organization_id": …}, …])
    rows = Direct(select(T.c.id).where(T.c.org == bindparam("org"))).rows(conn, {"org": org})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, Insert, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

__all__ = ["Bound", "Direct"]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # positional paramstyles: the parameters' order
    processors: Mapping[str, Callable[[Any], Any]]

    def params(self, values: Mapping[str, Any], memo: dict[Any, Any] | None = None) -> Any:
        """The driver's parameters for `values`; with a `memo`, a value converted once is not
        converted again (the rows of a batch share their times)."""
        processors = self.processors
        if processors and memo is not None:
            values = {
                k: (_memoized(processors[k], v, memo) if k in processors else v)
                for k, v in values.items()
            }
        elif processors:
            values = {k: (processors[k](v) if k in processors else v) for k, v in values.items()}
        if self.names is None:
            return values
        return tuple(values[name] for name in self.names)


def _memoized(processor: Callable[[Any], Any], value: Any, memo: dict[Any, Any]) -> Any:
    if not isinstance(value, datetime):  # the values worth it: times (hashable, repeated)
        return processor(value)
    key = (processor, value)
    done = memo.get(key, _MISSING)
    if done is _MISSING:
        done = memo[key] = processor(value)
    return done


_MISSING = object()
MULTI_ROWS = 16  # INSERTs of up to this many rows go as one multi-row statement


def _compile(statement: Executable, dialect: Dialect, keys: list[str] | None) -> _Compiled:
    done = statement.compile(dialect=dialect, column_keys=keys)
    processors = {}
    for name, bind in done.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    names = tuple(done.positiontup or ()) if dialect.positional else None
    return _Compiled(str(done), names, processors)


class Direct:
    """One statement; an INSERT takes every column of its table (a row gives each, None for
    NULL). Parameters are named as in the statement (`bindparam("org")`, or the column keys)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[tuple[str, int], _Compiled] = {}

    def _compiled(self, dialect: Dialect, rows: int = 1) -> _Compiled:
        """The statement for `dialect`; for an INSERT of 2 to MULTI_ROWS rows, one statement
        with that many VALUES rows (its parameters `<column>__<row>`)."""
        compiled = self._by_dialect.get((dialect.name, rows))
        if compiled is None:
            statement, keys = self.statement, None
            if isinstance(statement, Insert):
                columns = list(statement.table.columns)
                keys = [column.key for column in columns]
                if rows > 1:
                    statement = insert(statement.table).values(
                        [
                            {c.key: bindparam(f"{c.key}__{n}", type_=c.type) for c in columns}
                            for n in range(rows)
                        ]
                    )
                    keys = None
            compiled = self._by_dialect[dialect.name, rows] = _compile(statement, dialect, keys)
        return compiled

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run for each of `rows`: an INSERT of a few rows as one statement (one round trip),
        anything else as one driver `executemany`."""
        if not rows:
            return
        if not conn.in_transaction():
            conn.execute(self.statement, list(rows))
            return
        if len(rows) == 1 or (isinstance(self.statement, Insert) and len(rows) <= MULTI_ROWS):
            compiled = self._compiled(conn.dialect, len(rows))
            if len(rows) == 1:
                values = rows[0]
            else:
                values = {f"{k}__{n}": v for n, row in enumerate(rows) for k, v in row.items()}
            with _cursor(conn, compiled.sql) as cursor:
                cursor.execute(compiled.sql, compiled.params(values))
            return
        compiled = self._compiled(conn.dialect)
        with _cursor(conn, compiled.sql) as cursor:
            cursor.executemany(compiled.sql, [compiled.params(row) for row in rows])

    def bound(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> Bound:
        """`rows` with their values converted for `dialect` now, outside any transaction, to be
        run later by `Bound.run` (one `executemany`): a writer holding SQLite's lock then only
        executes."""
        compiled = self._compiled(dialect)
        memo: dict[Any, Any] = {}
        params = [compiled.params(r, memo) for r in rows]
        return Bound(self, dialect.name, compiled.sql, params, rows)

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> None:
        """Run once, answering nothing."""
        if not conn.in_transaction():
            conn.execute(self.statement, dict(params or {}))
            return
        compiled = self._compiled(conn.dialect)
        with _cursor(conn, compiled.sql) as cursor:
            cursor.execute(compiled.sql, compiled.params(params or {}))

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run a SELECT once; its rows as the driver gives them (plain tuples, no result
        processing: select columns that need none, or cast them to text)."""
        if not conn.in_transaction():
            return [tuple(row) for row in conn.execute(self.statement, dict(params))]
        compiled = self._compiled(conn.dialect)
        with _cursor(conn, compiled.sql) as cursor:
            cursor.execute(compiled.sql, compiled.params(params))
            return [tuple(row) for row in cursor.fetchall()]


@dataclass(frozen=True, slots=True)
class Bound:
    """A statement and its rows, bound ahead (`Direct.bound`)."""

    direct: Direct
    dialect: str
    sql: str
    params: list[Any]
    rows: Sequence[Mapping[str, Any]]

    def run(self, conn: Connection) -> None:
        """Run for every row, in the connection's transaction."""
        if not self.rows:
            return
        if not conn.in_transaction() or conn.dialect.name != self.dialect:
            self.direct.many(conn, self.rows)
            return
        with _cursor(conn, self.sql) as cursor:
            cursor.executemany(self.sql, self.params)


@contextmanager
def _cursor(conn: Connection, sql: str) -> Iterator[Any]:
    """A driver cursor on the connection; the driver's errors come out as SQLAlchemy's (as from
    `conn.execute`: callers catch `SQLAlchemyError`), a lost connection invalidated."""
    dbapi_connection = conn.connection.dbapi_connection
    cursor = conn.connection.cursor()
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, dbapi_connection, cursor)
        error = DBAPIError.instance(
            sql, None, exc, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost
        )
        if lost:
            conn.invalidate(exc)
        raise error from exc
    finally:
        with suppress(Exception):  # a cursor of a lost connection may not close
            cursor.close()
