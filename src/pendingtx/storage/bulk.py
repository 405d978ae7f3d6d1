"""Bulk inserts without per-row statement machinery: COPY on PostgreSQL, executemany elsewhere.

Values are converted once per column with the columns' own bind processors (the same code
SQLAlchemy runs per row), so both paths store exactly what a Core insert would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import sqlalchemy as sa


@cache
def _plan(table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect) -> tuple[str, list[Any]]:
    names = ", ".join(dialect.identifier_preparer.quote(c) for c in columns)
    marks = ", ".join(["?" if dialect.paramstyle == "qmark" else "%s"] * len(columns))
    processors = [table.c[c].type._cached_bind_processor(dialect) for c in columns]
    # Only our own table and column names are interpolated, never values.
    return f"INSERT INTO {table.name} ({names}) VALUES ({marks})", processors  # noqa: S608


def _bound(
    rows: Sequence[Sequence[Any]], processors: list[Callable[[Any], Any] | None]
) -> list[tuple[Any, ...]]:
    converting = [(i, _Repeating(p)) for i, p in enumerate(processors) if p is not None]
    if not converting:
        return [tuple(row) for row in rows]
    bound = [list(row) for row in rows]
    # Column by column: most columns need no conversion, and a row-wide generator would visit them all.
    for i, convert in converting:
        for row in bound:
            value = row[i]
            if value is not None:
                row[i] = convert(value)
    return [tuple(row) for row in bound]


class _Repeating:
    """A bind processor that converts a value it has just converted (the same object) only once.

    Rows of one chunk share some values, such as its creation time in two columns of every row.
    """

    __slots__ = ("_last", "_out", "_processor")

    def __init__(self, processor: Callable[[Any], Any]) -> None:
        self._processor = processor
        self._last: Any = _Repeating
        self._out: Any = None

    def __call__(self, value: Any) -> Any:
        if value is not self._last:
            self._last = value
            self._out = self._processor(value)
        return self._out


def insert_rows(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` (values in `columns` order) inside the connection's transaction."""
    if not rows:
        return
    sql, processors = _plan(table, columns, conn.dialect)
    if conn.dialect.name == "postgresql":
        _copy(conn, table, columns, _bound(rows, processors))
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    error = conn.dialect.loaded_dbapi.Error
    try:
        driver.executemany(sql, _bound(rows, processors))
    except error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, error) from exc


def _copy(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    driver = conn.connection.driver_connection
    assert driver is not None
    names = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    error = conn.dialect.loaded_dbapi.Error
    try:
        with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    except error as exc:
        # Surface driver errors as SQLAlchemy's, so callers handle a duplicate key the same way everywhere.
        raise sa.exc.DBAPIError.instance(f"COPY {table.name}", None, exc, error) from exc
