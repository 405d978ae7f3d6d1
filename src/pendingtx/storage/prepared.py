"""Statements compiled once per dialect and run on a pooled DB-API connection.

The status GET is the hot path: SQLAlchemy's per-execution machinery (events, compiled-cache
lookups, result processing) costs several times the query itself there, so those few reads are
compiled once from the same Core constructs and executed directly on the driver.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class Prepared:
    """A Core statement compiled for one dialect, with its parameters in the driver's order."""

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        positional = getattr(compiled, "positional", False)
        self._order = list(getattr(compiled, "positiontup", None) or ()) if positional else None

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The parameters as the driver wants them: a tuple (qmark) or the mapping (pyformat)."""
        if self._order is None:
            return values
        return tuple(values[name] for name in self._order)


class DirectReads:
    """Runs prepared reads on the driver directly, outside SQLAlchemy's Connection.

    On SQLite each thread keeps one connection, reading in autocommit mode (no BEGIN/ROLLBACK);
    one that fails is discarded and the next read opens a new one. Elsewhere reads use the pool.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    def prepare(self, statement: sa.ClauseElement) -> Prepared:
        """Compile a statement for this engine's dialect."""
        return Prepared(statement, self.dialect)

    def _connection(self) -> Any:
        connection: Any = getattr(self._local, "connection", None)
        if connection is None:
            # Detached from the pool: this thread owns it until it fails or the engine closes.
            fairy = self.engine.raw_connection()
            fairy.detach()
            connection = fairy.dbapi_connection
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor for one read; driver errors surface as SQLAlchemy's."""
        error = self.dialect.loaded_dbapi.Error
        if self.dialect.name != "sqlite":
            # Over a network, reads run in worker threads: take a pooled connection for each.
            try:
                connection = self.engine.raw_connection()
            except error as exc:
                raise sa.exc.DBAPIError.instance(None, None, exc, error) from exc
            try:
                yield connection.cursor()
            except error as exc:
                connection.invalidate()
                raise sa.exc.DBAPIError.instance(None, None, exc, error) from exc
            finally:
                connection.close()
            return
        try:
            local = self._connection()
        except error as exc:
            raise sa.exc.DBAPIError.instance(None, None, exc, error) from exc
        try:
            yield local.cursor()
        except error as exc:
            self._discard(local)
            raise sa.exc.DBAPIError.instance(None, None, exc, error) from exc

    def _discard(self, connection: Any) -> None:
        self._local.connection = None
        with self._lock:
            if connection in self._opened:
                self._opened.remove(connection)
        with suppress(Exception):
            connection.close()

    def close(self) -> None:
        """Close every reading connection (when the engine is disposed)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            with suppress(Exception):
                connection.close()


def utc(value: Any) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive UTC text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
