"""Statements outside transactions (storage.driver.detached: DetachedStatements, and AwaitedStatements
on PostgreSQL): a connection lost while idle costs no request an error, and a failed statement
surfaces as SQLAlchemy's error.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from pendingtx.bootstrap import Runtime
from pendingtx.storage.driver import Statement
from pendingtx.storage.driver.detached import AwaitedStatements, DetachedStatements
from pendingtx.storage.tables import apps

pytestmark = pytest.mark.usefixtures("app_creds")

_APP_KEYS = Statement(sa.select(apps.c.app_key))


def _server_drops_other_connections(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        dropped = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return int(dropped)


def test_reads_come_back_as_rows(runtime: Runtime) -> None:
    reads = DetachedStatements(runtime.engine)
    query = _APP_KEYS
    try:
        assert len(reads.all(query, {})) == 1
        assert reads.one(query, {}) is not None
    finally:
        reads.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_dropped_while_idle_is_replaced_without_an_error(runtime: Runtime) -> None:
    reads = DetachedStatements(runtime.engine)
    query = _APP_KEYS
    try:
        assert reads.one(query, {}) is not None
        assert _server_drops_other_connections(runtime) >= 1
        assert reads.one(query, {}) is not None
        assert reads.one(query, {}) is not None
    finally:
        reads.close()


def test_a_failing_read_raises_sqlalchemys_error(runtime: Runtime) -> None:
    reads = DetachedStatements(runtime.engine)
    broken = Statement(sa.select(sa.column("no_such_column")).select_from(apps))
    try:
        with pytest.raises(sa.exc.DBAPIError):
            reads.one(broken, {})
        assert reads.one(_APP_KEYS, {}) is not None
    finally:
        reads.close()


def _async_reads(runtime: Runtime, size: int) -> tuple[AwaitedStatements, Statement]:
    return AwaitedStatements(runtime.engine, size=size), _APP_KEYS


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_async_reads_share_at_most_size_connections(runtime: Runtime) -> None:
    reads, query = _async_reads(runtime, size=2)

    async def main() -> list[object]:
        return await asyncio.gather(*(reads.one(query, {}) for _ in range(20)))

    try:
        assert all(row is not None for row in asyncio.run(main()))
        assert reads._open == 2
        assert len(reads._idle) == 2
    finally:
        reads.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_async_reads_cancelled_give_their_connection_back(runtime: Runtime) -> None:
    reads, query = _async_reads(runtime, size=1)
    slow = Statement(sa.select(sa.func.pg_sleep(30).label("slept")))

    async def main() -> object:
        reading = asyncio.ensure_future(reads.one(slow, {}))
        waiting = asyncio.ensure_future(reads.one(query, {}))  # waits for the one connection
        await asyncio.sleep(0.1)
        waiting.cancel()
        reading.cancel()
        await asyncio.gather(reading, waiting, return_exceptions=True)
        return await reads.one(query, {})

    try:
        assert asyncio.run(main()) is not None
        assert reads._open == 1
    finally:
        reads.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_an_async_connection_dropped_while_idle_is_replaced_without_an_error(runtime: Runtime) -> None:
    reads, query = _async_reads(runtime, size=2)
    try:
        assert asyncio.run(reads.one(query, {})) is not None
        assert _server_drops_other_connections(runtime) >= 1
        assert asyncio.run(reads.one(query, {})) is not None
        assert reads._open == 1
    finally:
        reads.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_a_failing_async_read_raises_sqlalchemys_error(runtime: Runtime) -> None:
    reads, query = _async_reads(runtime, size=1)
    broken = Statement(sa.select(sa.column("no_such_column")).select_from(apps))
    try:
        with pytest.raises(sa.exc.DBAPIError):
            asyncio.run(reads.one(broken, {}))
        assert asyncio.run(reads.one(query, {})) is not None
    finally:
        reads.close()
