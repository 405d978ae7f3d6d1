"""Per-test databases: a copy of a migrated SQLite file, or a PostgreSQL database cloned from a template."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from pendingtx.config import Settings
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.migrate import upgrade
from pendingtx.storage.tables import metadata

PG_ADMIN_URL = os.environ.get("PENDINGTX_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def migrated_sqlite(path: Path) -> Path:
    """Create and migrate a SQLite file, checkpointed so that a plain file copy is complete."""
    engine = make_engine(Settings(database_url=f"sqlite:///{path}"))
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    """A fresh database for one test: a copy of the template file."""
    target = directory / "pendingtx.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def _pg_url(database: str) -> str:
    return sa.make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


def _admin() -> sa.Engine:
    return sa.create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )


def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when the server answers."""
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        return f"PostgreSQL at {sa.make_url(PG_ADMIN_URL).render_as_string()} is unreachable: {exc.orig}"
    finally:
        admin.dispose()
    return None


def require_postgres() -> None:
    """Skip outside CI when there is no server; in CI a missing server is a failure, never a skip."""
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@contextmanager
def postgres_template() -> Iterator[str]:
    """A migrated template database for this test session, dropped at its end."""
    name = f"ptx_template_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(Settings(database_url=_pg_url(name)))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class PostgresDatabases:
    """Hands each test a database of its own, cloned from the template.

    Cloning costs about 0.3 s here, so a database is emptied (TRUNCATE, identities restarted) after
    its test and handed to a later test instead of being dropped: one test at a time, never shared.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self.admin = _admin()
        self.free: list[str] = []
        self.created: list[str] = []

    @contextmanager
    def database(self) -> Iterator[str]:
        """A clean database for the duration of one test."""
        name = self.free.pop() if self.free else self._clone()
        yield _pg_url(name)
        if self._empty(name):
            self.free.append(name)
        else:
            self._drop(name)

    def _clone(self) -> str:
        name = f"ptx_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return name

    def _empty(self, name: str) -> bool:
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        engine = sa.create_engine(_pg_url(name).replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.begin() as conn:
                # A test that left a transaction open would block us: then the database is dropped.
                conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
                conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        except sa.exc.DBAPIError:
            return False
        finally:
            engine.dispose()
        return True

    def _drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Drop every database this session made."""
        for name in self.created:
            self._drop(name)
        self.admin.dispose()
