"""Engines: the SQLite file's pragmas and transaction mode, or a PostgreSQL pool."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event

from pendingtx.config import Settings
from pendingtx.storage.driver.dialects import AT_COMMIT, dialect_of, send_at_commit
from pendingtx.storage.driver.statements import BEGIN_PENDING, Statement, driver_errors

# An execution option on a connection: its transaction will write, so SQLite takes the lock up front.
WRITE_OPTION = "pendingtx_write"
# An execution option: this write may be lost in a power cut (never in a process crash) because it
# can be redone: a worker's progress, which a takeover repeats without applying anything twice.
REDOABLE_OPTION = "pendingtx_redoable"


# A PostgreSQL connection idle in the pool for longer than this is checked before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0
_RETURNED_AT = "pendingtx.returned_at"

# Every PostgreSQL connection's options. A dead or silent server must fail fast: requests answer
# 503 instead of waiting on it.
PG_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


def normalize_url(url: str) -> str:
    """Let users write `postgresql://`; we always drive PostgreSQL through psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def libpq_conninfo(url: str) -> str:
    """The URL as libpq understands it (without SQLAlchemy's driver suffix), for direct psycopg use."""
    return sa.make_url(normalize_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(settings: Settings) -> sa.Engine:
    """Create the engine for the configured database."""
    url = normalize_url(settings.database_url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, settings)
    engine = sa.create_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=0,
        pool_timeout=5,
        connect_args=dict(PG_CONNECT_ARGS),
        # psycopg waits for a BEGIN of its own before a transaction's first statement; in autocommit
        # our statements send it themselves, in that statement's round trip (see BEGIN_PENDING).
        isolation_level="AUTOCOMMIT",
    )

    # SQLAlchemy's pool_pre_ping, for a connection not given back in the last second only: the check
    # is a round trip of its own, which under load every transaction paid, while a connection that
    # just worked and is not known broken (psycopg marks one that failed so) nearly always still does.
    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.closed or dbapi_connection.broken:
            raise sa.exc.DisconnectionError()
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except psycopg.Error as exc:
                raise sa.exc.DisconnectionError() from exc

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    dialect = dialect_of("postgresql")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.info.pop(AT_COMMIT, None)  # left by a transaction that ended without commit or rollback
        conn.info[BEGIN_PENDING] = True
        if conn.get_execution_options().get(REDOABLE_OPTION, False):
            # Only this transaction: its commit need not wait for the WAL flush. Read at commit, so
            # it is sent with the commit, not in a round trip of its own.
            send_at_commit(conn, _NOT_DURABLE, {})

    @event.listens_for(engine, "before_cursor_execute")
    def _before_execute(conn: sa.Connection, *_: Any) -> None:
        # A statement run by SQLAlchemy itself (migrations, tests) begins the transaction the usual way.
        if conn.info.pop(BEGIN_PENDING, False):
            driver: Any = conn.connection.driver_connection
            driver.execute("BEGIN", prepare=False)

    @event.listens_for(engine, "commit")
    def _on_commit(conn: sa.Connection) -> None:
        if conn.info.get(BEGIN_PENDING, False) and all(
            statement is _NOT_DURABLE for statement, _ in conn.info.get(AT_COMMIT, [])
        ):
            # Nothing ran, nothing is left to write: the transaction never began on the server.
            conn.info.pop(BEGIN_PENDING)
            conn.info.pop(AT_COMMIT, None)
            return
        # What a transaction left to send with its commit, if it did not end through Dialect.finish.
        dialect.finish(conn, [])
        conn.info.pop(BEGIN_PENDING, None)

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: sa.Connection) -> None:
        conn.info.pop(AT_COMMIT, None)
        conn.info.pop(BEGIN_PENDING, None)

    return engine


_NOT_DURABLE = Statement(sa.text("SET LOCAL synchronous_commit TO OFF"))


def _sqlite_engine(url: str, settings: Settings) -> sa.Engine:
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
        pool_size=8,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver, so that the "begin" hook below decides how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        options = conn.get_execution_options()
        # Straight on the driver: these run once per transaction, where SQLAlchemy's statement
        # machinery would cost more than SQLite does.
        driver = conn.connection.driver_connection
        assert driver is not None
        if options.get(WRITE_OPTION, False):
            wanted = "NORMAL" if options.get(REDOABLE_OPTION, False) else settings.sqlite_synchronous
            info = conn.connection.info
            if info.get("synchronous") != wanted:
                driver.execute(f"PRAGMA synchronous={wanted}")
                info["synchronous"] = wanted
            # BEGIN IMMEDIATE takes the write lock now, so a writer never fails half-way on an upgrade.
            _begin(conn, driver, "BEGIN IMMEDIATE")
        else:
            _begin(conn, driver, "BEGIN")

    return engine


def _begin(conn: sa.Connection, driver: Any, statement: str) -> None:
    # A busy database must surface as SQLAlchemy's OperationalError, which the API answers with 503.
    with driver_errors(conn.dialect.loaded_dbapi, statement):
        driver.execute(statement)
