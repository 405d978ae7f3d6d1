"""Single statements outside any transaction, on connections of their own: the reads every request
makes, and the rate counters' one-statement writes.

Each statement runs in autocommit (no BEGIN/COMMIT around it) on a connection detached from the pool.
`DetachedStatements` blocks: on SQLite each thread keeps one connection; elsewhere idle connections
wait on a stack for whichever thread runs next, without the pool's liveness ping. A statement that
fails on a connection that had been idle is run again once on a new one (these statements can be
repeated), so a restarted server costs no request an error. `AwaitedStatements` does the same on
the event loop over psycopg's asynchronous connections (PostgreSQL): the loop waits on the socket
instead of hopping to a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import make_conninfo

from pendingtx.storage.driver.dialects import dialect_of
from pendingtx.storage.driver.engine import PG_CONNECT_ARGS
from pendingtx.storage.driver.statements import Compiled, Statement, driver_errors


class _Connection:
    """A detached connection with the one cursor it runs statements through."""

    __slots__ = ("cursor", "driver")

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.cursor = driver.cursor()


def _first(cursor: Any, compiled: Compiled) -> Any:
    raw = cursor.fetchone() if compiled.returns_rows else None
    return None if raw is None else compiled.rows([raw], cursor)[0]


def _all(cursor: Any, compiled: Compiled) -> Any:
    return compiled.rows(cursor.fetchall(), cursor) if compiled.returns_rows else []


def _count(cursor: Any, _: Compiled) -> Any:
    return int(cursor.rowcount)


Reader = Callable[[Any, Compiled], Any]
_DATA_VERSION = "PRAGMA data_version"


class DetachedStatements:
    """Runs single statements in autocommit on connections detached from the engine's pool."""

    def __init__(self, engine: sa.Engine, *, max_idle: int = 10) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._dbapi = self.dialect.loaded_dbapi
        self._error: type[Exception] = self._dbapi.Error
        # SQLite connections are cheap and local: one per thread, never shared.
        self._per_thread = dialect_of(self.dialect.name).embedded
        self._max_idle = max_idle
        self._local = threading.local()
        self._idle: list[_Connection] = []
        self._opened: list[_Connection] = []
        self._lock = threading.Lock()

    def one(self, statement: Statement, values: Mapping[str, Any]) -> Any:
        """The statement's first row (named), or None."""
        return self._run(statement.compiled(self.dialect), values, _first)

    def all(self, statement: Statement, values: Mapping[str, Any]) -> list[Any]:
        """Every row of the statement."""
        rows: list[Any] = self._run(statement.compiled(self.dialect), values, _all)
        return rows

    def count(self, statement: Statement, values: Mapping[str, Any]) -> int:
        """How many rows the statement (a write) affected."""
        affected: int = self._run(statement.compiled(self.dialect), values, _count)
        return affected

    @property
    def sees_commits(self) -> bool:
        """Whether `committed_elsewhere` can tell (SQLite); elsewhere it always says True."""
        return self._per_thread

    def committed_elsewhere(self) -> bool:
        """Whether another connection (of any process) may have committed since this thread last asked.

        On SQLite `PRAGMA data_version` reads shared memory, no I/O; elsewhere there is no such
        signal, and the answer is always True.
        """
        if not self._per_thread:
            return True
        local = self._local.__dict__
        connection = local.get("connection") or self._thread_connection()
        cursor = connection.cursor
        # Asked on every status GET: the driver's error is translated here rather than through
        # driver_errors' context manager, which would cost as much as the read itself.
        try:
            cursor.execute(_DATA_VERSION)
            version = cursor.fetchone()[0]
        except self._error as exc:
            self._local.connection = None
            self._discard(connection)
            raise sa.exc.DBAPIError.instance(_DATA_VERSION, None, exc, self._error) from exc
        changed: bool = local.get("data_version") != version
        local["data_version"] = version
        return changed

    def _run(self, compiled: Compiled, values: Mapping[str, Any], read: Reader) -> Any:
        parameters = compiled.parameters(values)
        if self._per_thread:
            connection = self._local.__dict__.get("connection") or self._thread_connection()
            try:
                with driver_errors(self._dbapi, compiled.sql):
                    connection.cursor.execute(compiled.sql, parameters)
            except sa.exc.DBAPIError:
                self._local.connection = None
                self._discard(connection)
                raise
            return read(connection.cursor, compiled)
        try:
            idle = self._idle.pop()
        except IndexError:
            idle = None
        if idle is not None:
            try:
                return self._run_on(idle, compiled, parameters, read)
            except self._error:
                self._discard(idle)  # idle too long, or the server restarted: run again below
        with driver_errors(self._dbapi, compiled.sql):
            connection = self._open()
            try:
                return self._run_on(connection, compiled, parameters, read)
            except self._error:
                self._discard(connection)
                raise

    def _run_on(self, connection: _Connection, compiled: Compiled, parameters: Any, read: Reader) -> Any:
        connection.cursor.execute(compiled.sql, parameters)
        result = read(connection.cursor, compiled)
        if len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            self._discard(connection)
        return result

    def _thread_connection(self) -> _Connection:
        with driver_errors(self._dbapi, None):
            connection = self._open()
        self._local.connection = connection
        # A new connection counts its data versions afresh: nothing seen on the old one compares.
        self._local.data_version = None
        return connection

    def _open(self) -> _Connection:
        # Detached from the pool: this object owns it until it fails or the engine closes.
        fairy = self.engine.raw_connection()
        fairy.detach()
        driver: Any = fairy.dbapi_connection
        if not self._per_thread:
            driver.autocommit = True  # SQLite connections are in autocommit already (engine.py)
        connection = _Connection(driver)
        with self._lock:
            self._opened.append(connection)
        return connection

    def _discard(self, connection: _Connection) -> None:
        with self._lock:
            if connection in self._opened:
                self._opened.remove(connection)
        with suppress(Exception):
            connection.driver.close()

    def close(self) -> None:
        """Close every connection (when the engine is disposed)."""
        with self._lock:
            opened, self._opened = self._opened, []
            self._idle = []
        for connection in opened:
            with suppress(Exception):
                connection.driver.close()


class AwaitedStatements:
    """Single statements on PostgreSQL awaited on the event loop, over psycopg's async connections.

    At most `size` connections are open; a statement waits for a free one (within its caller's
    deadline). A statement that fails or is cancelled closes its connection, whose state is then
    unknown.
    """

    def __init__(self, engine: sa.Engine, *, size: int = 10) -> None:
        # With the engine's connection options: a dead server must fail as fast here as anywhere.
        self._conninfo = make_conninfo(
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False), **PG_CONNECT_ARGS
        )
        self.dialect = engine.dialect
        self._dbapi = self.dialect.loaded_dbapi
        self._error: type[Exception] = self._dbapi.Error
        self._size = size
        self._open = 0
        self._idle: list[Any] = []
        # Statements waiting for a connection; each is handed one, or None: leave to open a new one.
        self._waiters: deque[asyncio.Future[Any]] = deque()

    async def one(self, statement: Statement, values: Mapping[str, Any]) -> Any:
        """The statement's first row (named), or None."""
        compiled = statement.compiled(self.dialect)
        parameters = compiled.parameters(values)
        connection = await self._take()
        if connection is not None:
            try:
                return await self._run_on(connection, compiled, parameters)
            except self._error:
                pass  # idle too long, or the server restarted: run again below on a new one
            except BaseException:
                self._give(None)
                raise
        try:
            with driver_errors(self._dbapi, compiled.sql):
                connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                return await self._run_on(connection, compiled, parameters)
        except BaseException:
            self._give(None)
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
        """Hand a connection (or, for one closed, the leave to open another) to a waiting statement."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is None:
            self._open -= 1
        else:
            self._idle.append(connection)

    async def _run_on(self, connection: Any, compiled: Compiled, parameters: Any) -> Any:
        try:
            cursor = await connection.execute(compiled.sql, parameters)
            raw = await cursor.fetchone() if compiled.returns_rows else None
        except BaseException:
            _close(connection)
            raise
        self._give(connection)
        return None if raw is None else compiled.rows([raw], cursor)[0]

    def close(self) -> None:
        """Close the idle connections (those in use are closed when their statement ends or fails)."""
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for connection in idle:
            _close(connection)


def _close(connection: Any) -> None:
    # Synchronous on purpose: it only closes the socket, and runs where awaiting is not possible
    # (a cancelled statement, the runtime's close).
    with suppress(Exception):
        connection.pgconn.finish()
