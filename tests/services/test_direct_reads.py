"""The hot reads' own connections (storage.prepared.DirectReads): a connection lost while idle costs no
request an error, and a failed read surfaces as SQLAlchemy's error.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pendingtx.bootstrap import Runtime
from pendingtx.storage.prepared import DirectReads
from pendingtx.storage.tables import apps

pytestmark = pytest.mark.usefixtures("app_creds")

_APP_KEYS = sa.select(apps.c.app_key)


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
    reads = DirectReads(runtime.engine)
    query = reads.prepare(_APP_KEYS)
    try:
        assert len(reads.all(query, {})) == 1
        assert reads.one(query, {}) is not None
    finally:
        reads.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_dropped_while_idle_is_replaced_without_an_error(runtime: Runtime) -> None:
    reads = DirectReads(runtime.engine)
    query = reads.prepare(_APP_KEYS)
    try:
        assert reads.one(query, {}) is not None
        assert _server_drops_other_connections(runtime) >= 1
        assert reads.one(query, {}) is not None
        assert reads.one(query, {}) is not None
    finally:
        reads.close()


def test_a_failing_read_raises_sqlalchemys_error(runtime: Runtime) -> None:
    reads = DirectReads(runtime.engine)
    broken = reads.prepare(sa.select(sa.text("no_such_column")).select_from(apps))
    try:
        with pytest.raises(sa.exc.DBAPIError):
            reads.one(broken, {})
        assert reads.one(reads.prepare(_APP_KEYS), {}) is not None
    finally:
        reads.close()
