"""Transactions as context managers: commit when the block succeeds, roll back otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from pendingtx.storage.engine import REDOABLE_OPTION, WRITE_OPTION


class UnitOfWork:
    """Hands out connections inside one database transaction each; repositories never commit."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._redoable = engine.execution_options(**{WRITE_OPTION: True, REDOABLE_OPTION: True})

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
        with (self._redoable if redoable else self._writer).connect() as conn, conn.begin():
            yield conn

    @property
    def dialect(self) -> str:
        """The database's dialect name (`sqlite` or `postgresql`)."""
        return self.engine.dialect.name
