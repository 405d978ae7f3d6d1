"""Every difference between SQLite and PostgreSQL that the service's queries meet, and nowhere else.

SQLite is the embedded default: one file, one writer at a time, one process serving the API and
running the worker. PostgreSQL is for scaling out: row locks, many processes, LISTEN/NOTIFY.
Queries are written once in Core and ask their dialect only where the two must differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from functools import cache
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pendingtx.storage.driver.statements import (
    Result,
    Statement,
    Values,
    announce,
    begin_pending,
    driver_errors,
    parameters_for,
    run,
    run_and_commit,
    run_many,
)

# PostgreSQL: deadlock detected, serialization failure. A transaction that failed so may succeed
# at once when run again.
_CONFLICT_STATES = frozenset({"40P01", "40001"})

# Given an item of a list parameter, a query that finds its row (see Dialect.found_items).
Probe = Callable[[sa.ColumnElement[Any]], sa.Select[Any]]


class Dialect:
    """What the queries need to know of a database; one instance per kind (see `dialect_of`)."""

    name: str
    # One process owns the database (the embedded SQLite file): it serves the API, runs the worker,
    # and no other process needs waking.
    embedded: bool
    # One writer at a time for the whole database, as opposed to row locks.
    single_writer: bool
    # A statement may UPDATE, INSERT and SELECT at once (data-modifying WITH): several writes cost
    # one round trip. (SQLite's statements are calls in the process: there is no trip to save.)
    writable_ctes: bool = False

    def lock_skipping(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """`query` locking the rows it reads until commit, skipping rows other transactions hold."""
        raise NotImplementedError

    def upsert(self, table: sa.Table) -> Any:
        """An INSERT construct with `on_conflict_do_update` and `excluded`, for this database."""
        raise NotImplementedError

    def found_items(self, name: str, probe: Probe) -> sa.Select[Any]:
        """The items of the list parameter `name` (see `list_value`) for which `probe(item)` finds a row.

        A list travels as one parameter, since a compiled-once statement cannot expand `IN (...)`.
        """
        raise NotImplementedError

    def list_value(self, items: Collection[str]) -> Any:
        """A list of strings as the one parameter `found_items` reads."""
        raise NotImplementedError

    def announce(self, conn: sa.Connection, channel: str, payload: str = "") -> None:
        """Tell listening processes, when this transaction commits, that `channel` has news (`payload`).

        PostgreSQL sends it with the commit (see `finish`); SQLite's one process has nobody to tell.
        """

    def write_at_commit(self, conn: sa.Connection, statement: Statement, rows: Sequence[Values]) -> None:
        """Execute the statement once per row of values in this transaction, at the latest as it
        commits: for a write whose row count nobody reads, and whose rows the transaction does not
        read again. PostgreSQL sends it with the commit (see `finish`), a round trip saved."""
        run_many(conn, statement, rows)

    def insert_rows_at_commit(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> bool:
        """Take rows for `insert_rows(with_commit=True)` to insert with the commit; False: insert them now."""
        return False

    def finish(self, conn: sa.Connection, last: Sequence[tuple[Statement, Values]]) -> list[Result]:
        """Run the transaction's last statements (their results, in order); where a round trip can be
        saved (PostgreSQL), they go with the announcements and the commit itself."""
        return [run(conn, statement, values) for statement, values in last]

    def try_exclusive(self, conn: sa.Connection, name: str) -> bool:
        """Whether this transaction is, until it ends, the only one working under `name`: False, at
        once, while another transaction (of any process) is.
        """
        return True

    def insert_rows(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[Any]
    ) -> None:
        """Insert rows of bound values (in `columns` order) in the connection's transaction."""
        raise NotImplementedError

    def retry_may_succeed(self, exc: sa.exc.DBAPIError) -> bool:
        """Whether a write transaction that failed with `exc` may well succeed if run again at once.

        A duplicate key means another transaction inserted the same row meanwhile: looked at again,
        the rows are different. Deadlocks and serialization failures are PostgreSQL's own.
        """
        return isinstance(exc, sa.exc.IntegrityError)


class SQLite(Dialect):
    """The embedded file: no row locks (BEGIN IMMEDIATE serializes writers), no notifications."""

    name = "sqlite"
    embedded = True
    single_writer = True

    def lock_skipping(self, query: sa.Select[Any]) -> sa.Select[Any]:
        # Writers take the database's one write lock up front (BEGIN IMMEDIATE): nobody to skip.
        return query

    def upsert(self, table: sa.Table) -> Any:
        # ON CONFLICT ... RETURNING needs SQLite 3.35 or newer.
        return sqlite.insert(table)

    def found_items(self, name: str, probe: Probe) -> sa.Select[Any]:
        # The list travels as one JSON array text; SQLite runs the probe once per item.
        items = sa.func.json_each(sa.bindparam(name)).table_valued("value")
        return sa.select(items.c.value).where(probe(items.c.value).exists())

    def list_value(self, items: Collection[str]) -> Any:
        return msgspec.json.encode(list(items))

    def insert_rows(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[Any]
    ) -> None:
        sql = _insert_sql(table, tuple(columns), conn.dialect)
        driver: Any = conn.connection.driver_connection
        announce(conn, None, sql, rows, many=True)
        with driver_errors(conn.dialect.loaded_dbapi, sql):
            driver.executemany(sql, rows)


class PostgreSQL(Dialect):
    """The scale-out database: rows locked with SKIP LOCKED, NOTIFY at commit, COPY for bulk rows."""

    name = "postgresql"
    embedded = False
    single_writer = False
    writable_ctes = True

    def lock_skipping(self, query: sa.Select[Any]) -> sa.Select[Any]:
        # Concurrent claimers skip each other's rows instead of queueing behind them.
        return query.with_for_update(skip_locked=True)

    def upsert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def found_items(self, name: str, probe: Probe) -> sa.Select[Any]:
        # One probe per item, forced by LATERAL ... LIMIT 1. The plain IN form is planned from
        # statistics, and before the first ANALYZE of a freshly filled table PostgreSQL scanned
        # the organization's every row for it instead: a large first import slowed down per chunk.
        items = (
            sa.func.unnest(sa.bindparam(name, type_=postgresql.ARRAY(sa.String)))
            .table_valued("value")
            .render_derived()
        )
        held = probe(items.c.value).limit(1).lateral()
        return sa.select(items.c.value).select_from(items.join(held, sa.true()))

    def list_value(self, items: Collection[str]) -> Any:
        return list(items)

    def announce(self, conn: sa.Connection, channel: str, payload: str = "") -> None:
        send_at_commit(conn, _NOTIFY, {"channel": channel, "payload": payload})

    def write_at_commit(self, conn: sa.Connection, statement: Statement, rows: Sequence[Values]) -> None:
        if rows:
            send_at_commit(conn, statement, list(rows))

    def insert_rows_at_commit(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> bool:
        # COPY waits for the server twice; a few rows cost less bound one by one in the commit's trip.
        if len(rows) > _FEW_ROWS:
            return False
        statement = _insert_statement(table, tuple(columns))
        self.write_at_commit(conn, statement, [dict(zip(columns, row, strict=True)) for row in rows])
        return True

    def finish(self, conn: sa.Connection, last: Sequence[tuple[Statement, Values]]) -> list[Result]:
        at_commit: list[tuple[Statement, Values | list[Values]]] = conn.info.pop(AT_COMMIT, [])
        if not last and not at_commit:
            return []
        # Each statement is a round trip of its own otherwise; sent with the commit, they cost none.
        # The transaction's own writes go first: one may wait on another transaction (a unique key
        # it inserts too), and `last` may take a lock to hold for the commit alone (events.flush).
        return run_and_commit(conn, [*at_commit, *last])[len(at_commit) :]

    def try_exclusive(self, conn: sa.Connection, name: str) -> bool:
        # A transaction-scoped advisory lock on 64 bits of the name: a collision costs a spurious,
        # retryable refusal. (A SQLite write transaction excludes every other writer already.)
        digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"pendingtx-lock").digest()
        return bool(run(conn, _TRY_LOCK, {"key": int.from_bytes(digest, signed=True)}).scalar())

    def insert_rows(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[Any]
    ) -> None:
        driver: Any = conn.connection.driver_connection
        names = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
        sql = f"COPY {table.name} ({names}) FROM STDIN"
        begin = begin_pending(conn)
        announce(conn, None, sql, rows, many=True)
        with driver_errors(conn.dialect.loaded_dbapi, sql), driver.cursor() as cursor:
            if begin:
                cursor.execute("BEGIN", prepare=False)  # COPY cannot travel in a pipeline
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)

    def retry_may_succeed(self, exc: sa.exc.DBAPIError) -> bool:
        return super().retry_may_succeed(exc) or getattr(exc.orig, "sqlstate", None) in _CONFLICT_STATES


# Statements a PostgreSQL transaction sends with its commit, such as its notifications (see
# `send_at_commit`).
AT_COMMIT = "pendingtx.at_commit"


def send_at_commit(conn: sa.Connection, statement: Statement, values: Values | list[Values]) -> None:
    """Run the statement (once per row where given a list of values) in this PostgreSQL transaction
    just before its commit, in the commit's round trip (Dialect.finish, or the engine's commit hook
    for a transaction that does not call it)."""
    conn.info.setdefault(AT_COMMIT, []).append((statement, values))


_NOTIFY = Statement(
    sa.select(
        sa.func.pg_notify(sa.bindparam("channel", type_=sa.Text), sa.bindparam("payload", type_=sa.Text))
    )
)
_TRY_LOCK = Statement(
    sa.select(sa.func.pg_try_advisory_xact_lock(sa.bindparam("key", type_=sa.BigInteger)).label("held"))
)


# Up to this many rows, `insert_rows_at_commit` binds them one by one rather than sending a COPY.
_FEW_ROWS = 16


@cache
def _insert_statement(table: sa.Table, columns: tuple[str, ...]) -> Statement:
    return Statement(table.insert().inline().values(parameters_for(table, *columns)))


@cache
def _insert_sql(table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect) -> str:
    names = ", ".join(dialect.identifier_preparer.quote(c) for c in columns)
    marks = ", ".join(["?" if dialect.paramstyle == "qmark" else "%s"] * len(columns))
    # Only our own table and column names are interpolated, never values.
    return f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608


_DIALECTS: dict[str, Dialect] = {"sqlite": SQLite(), "postgresql": PostgreSQL()}


def dialect_for(conn: sa.Connection) -> Dialect:
    """The dialect of the connection's database."""
    return _DIALECTS[conn.dialect.name]


def dialect_of(name: str) -> Dialect:
    """The dialect of SQLAlchemy's dialect `name`; ValueError for a database the service does not run on."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"pendingtx runs on SQLite or PostgreSQL, not {name}") from None
