"""Transactions as context managers: commit when the block succeeds, roll back otherwise."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa

from pendingtx.storage import events
from pendingtx.storage.driver import Dialect, dialect_of
from pendingtx.storage.driver.engine import REDOABLE_OPTION, WRITE_OPTION

T = TypeVar("T")

# How many threads may keep write connections at once (two each; SQLite's pool holds 16). More
# writers than that gain nothing on a database with one writer at a time.
MAX_KEEPING_THREADS = 4
# How often a write transaction that lost a race (Dialect.retry_may_succeed) is run in all.
WRITE_ATTEMPTS = 3


class UnitOfWork:
    """Hands out connections inside one database transaction each; repositories never commit."""

    def __init__(self, engine: sa.Engine, *, lock_timeout: float = 5.0) -> None:
        self.engine = engine
        self.rules: Dialect = dialect_of(engine.dialect.name)
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._redoable = engine.execution_options(**{WRITE_OPTION: True, REDOABLE_OPTION: True})
        # SQLite has one writer at a time, and a writer that finds the database locked sleeps in
        # SQLite's busy handler for 1 ms or more per try. Writers of this process queue on this
        # lock instead and take over the moment it is free; other processes still meet the busy
        # handler. PostgreSQL writers lock rows, not the database, so they never take it.
        self._write_lock = threading.Lock() if self.rules.single_writer else None
        self._lock_timeout = lock_timeout
        # Told, after each commit that recorded events, each organization's last sequence (the
        # in-process wake-up source of long-polls and streams); called on the committing thread.
        self.event_observers: list[Callable[[Mapping[int, int]], None]] = []
        # The connections a thread keeps between its write transactions (see `keeping_connections`),
        # by at most MAX_KEEPING_THREADS threads at once: together they hold half the pool at most.
        self._kept = threading.local()
        self._keepers = threading.BoundedSemaphore(MAX_KEEPING_THREADS)

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only transaction (a consistent snapshot on both databases)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, *, redoable: bool = False) -> Iterator[sa.Connection]:
        """A write transaction, committed when the block exits normally.

        A `redoable` write (a worker's claim or progress) may be lost in a power cut, since a takeover
        redoes it; every other commit, such as a job's acceptance, is flushed to disk first.
        """
        lock = self._write_lock
        # Past the timeout the transaction goes ahead without the lock: SQLite's own busy timeout
        # then decides, exactly as it would for a writer in another process.
        locked = lock is not None and lock.acquire(timeout=self._lock_timeout)
        recorded: Mapping[int, int] = {}
        try:
            with self._connection(redoable) as conn:
                try:
                    with conn.begin():
                        yield conn
                        events.flush(conn)
                finally:
                    recorded = events.take_recorded(conn)
        finally:
            if locked:
                assert lock is not None
                lock.release()
        # Only reached once committed: a rolled-back transaction's events never happened.
        if recorded:
            for observer in self.event_observers:
                observer(recorded)

    @contextmanager
    def keeping_connections(self) -> Iterator[None]:
        """Within this block, the calling thread's write transactions reuse one connection of each
        kind instead of taking one from the pool each time (SQLite, MAX_KEEPING_THREADS at once).

        For a thread that writes without pause (the acceptance writer, a worker), checking a
        connection out and back in costs more than a small transaction does in SQLite. PostgreSQL's
        connections stay with the pool, which replaces one the server has closed.
        """
        if (
            not self.rules.single_writer
            or getattr(self._kept, "connections", None) is not None
            or not self._keepers.acquire(blocking=False)
        ):
            yield
            return
        kept: dict[bool, sa.Connection] = {}
        self._kept.connections = kept
        try:
            yield
        finally:
            self._kept.connections = None
            for conn in kept.values():
                conn.close()
            self._keepers.release()

    @contextmanager
    def _connection(self, redoable: bool) -> Iterator[sa.Connection]:
        engine = self._redoable if redoable else self._writer
        kept: dict[bool, sa.Connection] | None = getattr(self._kept, "connections", None)
        if kept is None:
            with engine.connect() as conn:
                yield conn
            return
        conn = kept.pop(redoable) if redoable in kept else engine.connect()
        if conn.invalidated:
            conn.close()
            conn = engine.connect()
        try:
            yield conn
        except BaseException:
            # Whatever went wrong may have left the connection unfit: the pool resets or replaces it.
            conn.close()
            raise
        if redoable in kept:  # a write nested in this one kept its own meanwhile
            conn.close()
        else:
            kept[redoable] = conn

    def write_retrying(self, work: Callable[[sa.Connection], T], *, redoable: bool = False) -> T:
        """`work` in a write transaction, run again when it lost a race with another transaction.

        Such a transaction rolled back whole (another one inserted the same key, or the database
        chose it as a deadlock victim), so running it again looks at the rows anew.
        """
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.write(redoable=redoable) as conn:
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                if attempt == WRITE_ATTEMPTS or not self.rules.retry_may_succeed(exc):
                    raise
        raise AssertionError("unreachable")
