"""Statements compiled once per dialect and run on a pooled DB-API connection.

The status GET is the hot path: SQLAlchemy's per-execution machinery (events, compiled-cache
lookups, result processing) costs several times the query itself there, so those few reads are
compiled once from the same Core constructs and executed directly on the driver.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import make_conninfo

from pendingtx.storage.driver.engine import PG_CONNECT_ARGS


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


class _Reader:
    """A reading connection detached from the pool, with the one cursor it reads through."""

    __slots__ = ("connection", "cursor")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.cursor = connection.cursor()


class DirectReads:
    """Runs prepared reads on the driver directly, outside SQLAlchemy's Connection.

    Reads run in autocommit mode (no BEGIN/ROLLBACK) on connections detached from the pool. On
    SQLite each thread keeps one. Elsewhere idle connections wait on a stack for whichever thread
    reads next, without the pool's liveness ping: a read that fails on a connection that had been
    idle is retried once on a new one (a read can be repeated), so a restarted server costs no
    request an error. A connection that fails is closed; the next read opens a new one.
    """

    def __init__(self, engine: sa.Engine, *, max_idle: int = 10) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._error: type[Exception] = self.dialect.loaded_dbapi.Error
        self._per_thread = self.dialect.name == "sqlite"
        self._max_idle = max_idle
        self._local = threading.local()
        self._idle: list[_Reader] = []
        self._opened: list[_Reader] = []
        self._lock = threading.Lock()

    def prepare(self, statement: sa.ClauseElement) -> Prepared:
        """Compile a statement for this engine's dialect."""
        return Prepared(statement, self.dialect)

    def one(self, query: Prepared, values: Mapping[str, Any]) -> Any:
        """The query's first row, or None."""
        return self._read(query, values, many=False)

    def all(self, query: Prepared, values: Mapping[str, Any]) -> list[Any]:
        """Every row of the query."""
        rows: list[Any] = self._read(query, values, many=True)
        return rows

    def _read(self, query: Prepared, values: Mapping[str, Any], *, many: bool) -> Any:
        parameters = query.parameters(values)
        if self._per_thread:
            reader = self._local.__dict__.get("reader") or self._thread_reader()
            try:
                reader.cursor.execute(query.sql, parameters)
                return reader.cursor.fetchall() if many else reader.cursor.fetchone()
            except self._error as exc:
                self._local.reader = None
                self._discard(reader)
                raise sa.exc.DBAPIError.instance(None, None, exc, self._error) from exc
        try:
            reader = self._idle.pop()
        except IndexError:
            reader = None
        if reader is not None:
            try:
                return self._read_on(reader, query.sql, parameters, many)
            except self._error:
                self._discard(reader)  # idle too long, or the server restarted: retried below
        reader = self._open()
        try:
            return self._read_on(reader, query.sql, parameters, many)
        except self._error as exc:
            self._discard(reader)
            raise sa.exc.DBAPIError.instance(None, None, exc, self._error) from exc

    def _read_on(self, reader: _Reader, sql: str, parameters: Any, many: bool) -> Any:
        reader.cursor.execute(sql, parameters)
        result = reader.cursor.fetchall() if many else reader.cursor.fetchone()
        if len(self._idle) < self._max_idle:
            self._idle.append(reader)
        else:
            self._discard(reader)
        return result

    def _thread_reader(self) -> _Reader:
        reader = self._open()
        self._local.reader = reader
        return reader

    def _open(self) -> _Reader:
        try:
            # Detached from the pool: this object owns it until it fails or the engine closes.
            fairy = self.engine.raw_connection()
            fairy.detach()
            connection: Any = fairy.dbapi_connection
            if not self._per_thread:
                connection.autocommit = True
            reader = _Reader(connection)
        except self._error as exc:
            raise sa.exc.DBAPIError.instance(None, None, exc, self._error) from exc
        with self._lock:
            self._opened.append(reader)
        return reader

    def _discard(self, reader: _Reader) -> None:
        with self._lock:
            if reader in self._opened:
                self._opened.remove(reader)
        with suppress(Exception):
            reader.connection.close()

    def close(self) -> None:
        """Close every reading connection (when the engine is disposed)."""
        with self._lock:
            opened, self._opened = self._opened, []
            self._idle = []
        for reader in opened:
            with suppress(Exception):
                reader.connection.close()


class AsyncReads:
    """Prepared reads on PostgreSQL from the event loop itself, over psycopg's asynchronous connections.

    A thread hop per read costs the status GET its tail: with the API pinned to one core, the event
    loop competes with every database thread for the CPU and the GIL. Here the loop waits on the
    socket instead. At most `size` connections are open; a read waits for a free one (within its
    caller's deadline). Idle ones wait on a stack as in DirectReads (autocommit, a stale one retried
    once on a new one); a read that fails or is cancelled closes its connection, whose state is
    then unknown.
    """

    def __init__(self, engine: sa.Engine, *, size: int = 10) -> None:
        # With the engine's connection options: a dead server must fail as fast here as anywhere.
        self._conninfo = make_conninfo(
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False), **PG_CONNECT_ARGS
        )
        self._error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._size = size
        self._open = 0
        self._idle: list[Any] = []
        # Reads waiting for a connection; each is handed one, or None: leave to open a new one.
        self._waiters: deque[asyncio.Future[Any]] = deque()

    async def one(self, query: Prepared, values: Mapping[str, Any]) -> Any:
        """The query's first row, or None."""
        parameters = query.parameters(values)
        connection = await self._take()
        if connection is not None:
            try:
                return await self._read_on(connection, query.sql, parameters)
            except self._error:
                pass  # idle too long, or the server restarted: retried below on a new one
            except BaseException:
                self._give(None)
                raise
        try:
            connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            return await self._read_on(connection, query.sql, parameters)
        except BaseException as exc:
            self._give(None)
            if isinstance(exc, self._error):
                raise sa.exc.DBAPIError.instance(None, None, exc, self._error) from exc
            raise

    async def _take(self) -> Any:
        """An idle connection, or None with leave to open one (counted as open already)."""
        if self._idle:
            return self._idle.pop()
        if self._open < self._size:
            self._open += 1
            return None
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over just as the deadline passed
                self._give(waiter.result())
            raise

    def _give(self, connection: Any) -> None:
        """Hand a connection (or, for one closed, the leave to open another) to a waiting read."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is None:
            self._open -= 1
        else:
            self._idle.append(connection)

    async def _read_on(self, connection: Any, sql: str, parameters: Any) -> Any:
        try:
            cursor = await connection.execute(sql, parameters)
            row = await cursor.fetchone()
        except BaseException:
            _close(connection)
            raise
        self._give(connection)
        return row

    def close(self) -> None:
        """Close the idle connections (those reading now are closed when their read ends or fails)."""
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for connection in idle:
            _close(connection)


def _close(connection: Any) -> None:
    # Synchronous on purpose: it only closes the socket, and runs where awaiting is not possible
    # (a cancelled read, Runtime.close).
    with suppress(Exception):
        connection.pgconn.finish()


# Parsed timestamp texts: a token's and a polled job's come back on every request.
_PARSED: dict[str, datetime] = {}
_MAX_PARSED = 4096


def utc(value: Any) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive UTC text)."""
    if isinstance(value, str):
        parsed = _PARSED.get(value)
        if parsed is None:
            if len(_PARSED) >= _MAX_PARSED:
                _PARSED.clear()
            parsed = _PARSED[value] = _aware(datetime.fromisoformat(value))
        return parsed
    assert isinstance(value, datetime)
    return _aware(value)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
