"""Core statements compiled once per dialect and run on the driver, inside a SQLAlchemy transaction.

A worker's batch and a job's acceptance run a few short statements per transaction, and SQLAlchemy's
per-execution machinery (cache keys, execution contexts, events) costs more than SQLite takes to run
them. The statements are still written in Core, and every value still goes through its column's
bind processor, so what is stored is exactly what a Core execution would store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler


class _Compiled:
    """A statement compiled for one dialect: its SQL, its parameter order and its value converters."""

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("a statement run directly cannot expand IN lists at execution")
        # Literal values written into the statement (a status compared with, say) are parameters too.
        self._defaults: dict[str, Any] = dict(compiled.construct_params(_check=False))
        self._order: list[str] | None = list(compiled.positiontup or ()) if compiled.positional else None
        processors: dict[str, Callable[[Any], Any]] = {}
        for name in self._defaults:
            processor = compiled.binds[name].type._cached_bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        self._processors = processors

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The values, converted, as the driver wants them: a tuple (qmark) or a mapping (pyformat)."""
        merged = {**self._defaults, **values}
        for name, processor in self._processors.items():
            value = merged[name]
            if value is not None:
                merged[name] = processor(value)
        if self._order is None:
            return merged
        return tuple(merged[name] for name in self._order)


class DirectStatement:
    """A Core statement built by `build(dialect name)`, compiled the first time it runs on a database."""

    def __init__(self, build: Callable[[str], sa.ClauseElement]) -> None:
        self._build = build
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def compiled(self, dialect: sa.Dialect) -> _Compiled:
        """The statement compiled for this kind of database."""
        key = (dialect.name, dialect.paramstyle)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _Compiled(self._build(dialect.name), dialect)
        return found


def _driver_error(conn: sa.Connection) -> type[Exception]:
    error: type[Exception] = conn.dialect.loaded_dbapi.Error
    return error


def run(conn: sa.Connection, statement: DirectStatement, values: Mapping[str, Any]) -> Any:
    """Execute once on the connection's driver connection; returns the driver's cursor."""
    compiled = statement.compiled(conn.dialect)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    error = _driver_error(conn)
    try:
        cursor.execute(compiled.sql, compiled.parameters(values))
    except error as exc:
        # Surfaced as SQLAlchemy's errors, so that callers handle them the same on every path.
        raise sa.exc.DBAPIError.instance(compiled.sql, None, exc, error) from exc
    return cursor


def run_many(conn: sa.Connection, statement: DirectStatement, rows: Sequence[Mapping[str, Any]]) -> int:
    """Execute once per row of values on the connection's driver connection; returns the rows affected."""
    if not rows:
        return 0
    compiled = statement.compiled(conn.dialect)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    error = _driver_error(conn)
    try:
        cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
        return int(cursor.rowcount)
    except error as exc:
        raise sa.exc.DBAPIError.instance(compiled.sql, None, exc, error) from exc
    finally:
        cursor.close()
