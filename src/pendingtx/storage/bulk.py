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
    if not any(processors):
        return [tuple(row) for row in rows]
    return [
        tuple(
            value if p is None or value is None else p(value)
            for p, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]


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
