"""The driver seam behaves alike on SQLite and PostgreSQL: binding, rows, errors, lists, bulk rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from pendingtx.config import Settings
from pendingtx.storage.driver import Dialect, Statement, run, run_many
from pendingtx.storage.driver import engine as engine_module
from pendingtx.storage.driver.detached import AwaitedStatements, DetachedStatements
from pendingtx.storage.driver.dialects import AT_COMMIT
from pendingtx.storage.driver.engine import libpq_conninfo, make_engine
from pendingtx.storage.tables import organizations, rate_counters, transactions
from pendingtx.storage.unit_of_work import UnitOfWork
from tests import databases

MOMENT = datetime(2026, 3, 8, 6, 59, 59, 123456, tzinfo=UTC)

_ADD_ORG = Statement(
    organizations.insert()
    .values(name=sa.bindparam("name"), created_at=sa.bindparam("now", type_=organizations.c.created_at.type))
    .returning(organizations.c.id, organizations.c.created_at)
)
_ORG = Statement(
    sa.select(organizations.c.id, organizations.c.name, organizations.c.created_at).where(
        organizations.c.name == sa.bindparam("name")
    )
)


@pytest.fixture
def uow(database_url: str) -> Iterator[UnitOfWork]:
    engine = make_engine(Settings(database_url=database_url))
    yield UnitOfWork(engine)
    engine.dispose()


def test_values_are_bound_and_rows_read_as_core_would(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        added = run(conn, _ADD_ORG, {"name": "acme", "now": MOMENT}).one()
        core = conn.execute(sa.select(organizations.c.created_at).where(organizations.c.id == added.id))
        assert core.scalar_one() == MOMENT
    assert added.created_at == MOMENT
    with uow.read() as conn:
        row = run(conn, _ORG, {"name": "acme"}).one()
        assert run(conn, _ORG, {"name": "nobody"}).first() is None
    assert (row.id, row.name, row.created_at) == (added.id, "acme", MOMENT)
    assert row.created_at.tzinfo is not None


def test_a_driver_error_is_raised_as_sqlalchemys(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        run(conn, _ADD_ORG, {"name": "twice", "now": MOMENT})
    with pytest.raises(sa.exc.IntegrityError), uow.write() as conn:
        run(conn, _ADD_ORG, {"name": "twice", "now": MOMENT})
    assert uow.rules.retry_may_succeed(_integrity_error(uow))


def _integrity_error(uow: UnitOfWork) -> sa.exc.DBAPIError:
    try:
        with uow.write() as conn:
            run(conn, _ADD_ORG, {"name": "twice", "now": MOMENT})
    except sa.exc.IntegrityError as exc:
        return exc
    raise AssertionError("no duplicate key")


def test_write_retrying_runs_a_lost_race_again_then_gives_up(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        run(conn, _ADD_ORG, {"name": "taken", "now": MOMENT})
    attempts: list[str] = []

    def add(names: list[str]) -> object:
        def work(conn: sa.Connection) -> object:
            attempts.append(names[min(len(attempts), len(names) - 1)])
            return run(conn, _ADD_ORG, {"name": attempts[-1], "now": MOMENT}).one().id

        return work

    assert uow.write_retrying(add(["taken", "free"]))
    assert attempts == ["taken", "free"]
    attempts.clear()
    with pytest.raises(sa.exc.IntegrityError):
        uow.write_retrying(add(["taken"]))
    assert attempts == ["taken"] * 3


def test_a_list_travels_as_one_parameter(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        for name in ("a", "b", "c"):
            run(conn, _ADD_ORG, {"name": name, "now": MOMENT})
    found = Statement(
        lambda d: d.found_items(
            "names", lambda item: sa.select(organizations.c.id).where(organizations.c.name == item)
        )
    )
    with uow.read() as conn:
        rows = run(conn, found, {"names": uow.rules.list_value(["a", "c", "x", "a'; --"])}).all()
    assert sorted(r.value for r in rows) == ["a", "c"]


def test_upsert_counts_on_conflict(uow: UnitOfWork) -> None:
    def upsert(d: Dialect) -> sa.ClauseElement:
        insert = d.upsert(rate_counters)
        new = insert.values(key=sa.bindparam("key"), hits=1, expires_at=9.0)
        return new.on_conflict_do_update(
            index_elements=[rate_counters.c.key], set_={"hits": rate_counters.c.hits + 1}
        ).returning(rate_counters.c.hits)

    statement = Statement(upsert)
    with uow.write() as conn:
        assert [run(conn, statement, {"key": "k"}).scalar() for _ in range(3)] == [1, 2, 3]


def test_rows_inserted_in_bulk_read_back_exactly(uow: UnitOfWork) -> None:
    columns = ("key", "hits", "expires_at")
    with uow.write() as conn:
        uow.rules.insert_rows(conn, rate_counters, columns, [("x", 1, 1.5), ("y", 2, 2.5)])
        rows = conn.execute(sa.select(rate_counters).order_by(rate_counters.c.key)).all()
    assert [tuple(r) for r in rows] == [("x", 1, 1.5), ("y", 2, 2.5)]
    touched = Statement(rate_counters.update().values(hits=rate_counters.c.hits + sa.bindparam("n")))
    with uow.write() as conn:
        assert run_many(conn, touched, [{"n": 1}, {"n": 2}]) == 4


def test_detached_statements_run_outside_transactions_and_survive_a_lost_connection(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        run(conn, _ADD_ORG, {"name": "detached", "now": MOMENT})
    detached = DetachedStatements(uow.engine)
    try:
        assert detached.one(_ORG, {"name": "detached"}).created_at == MOMENT
        assert detached.all(_ORG, {"name": "nobody"}) == []
        if uow.rules.name == "postgresql":
            with uow.write() as conn:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        assert detached.one(_ORG, {"name": "detached"}).name == "detached"
    finally:
        detached.close()


@pytest.fixture
def pg_uow(postgres_databases: databases.PostgresDatabases) -> Iterator[UnitOfWork]:
    """PostgreSQL only: SQLite reads block, being local and cheaper than awaiting."""
    with postgres_databases.database() as url:
        engine = make_engine(Settings(database_url=url))
        yield UnitOfWork(engine)
        engine.dispose()


@pytest.mark.postgres
def test_awaited_statements_read_on_the_event_loop(pg_uow: UnitOfWork) -> None:
    uow = pg_uow
    with uow.write() as conn:
        run(conn, _ADD_ORG, {"name": "awaited", "now": MOMENT})
    awaited = AwaitedStatements(uow.engine, size=2)

    async def read() -> object:
        try:
            return await awaited.one(_ORG, {"name": "awaited"})
        finally:
            awaited.close()

    row = asyncio.run(read())
    assert row.created_at == MOMENT  # type: ignore[attr-defined]


def test_amounts_keep_their_digits(uow: UnitOfWork) -> None:
    bound = Statement(sa.select(sa.bindparam("amount", type_=transactions.c.amount.type).label("amount")))
    with uow.read() as conn:
        value = run(conn, bound, {"amount": Decimal("1234567890123.45")}).scalar()
    assert Decimal(value) == Decimal("1234567890123.45")


def test_the_last_statements_of_a_transaction_go_with_its_commit(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        run(conn, _ADD_ORG, {"name": "first", "now": MOMENT})
        (added,) = uow.rules.finish(conn, [(_ADD_ORG, {"name": "last", "now": MOMENT})])
        assert added.one().created_at == MOMENT
    with uow.read() as conn:
        assert run(conn, _ORG, {"name": "first"}).first() is not None
        assert run(conn, _ORG, {"name": "last"}).first() is not None


def _add_then_finish(uow: UnitOfWork, first: str, last: str) -> None:
    with uow.write() as conn:
        run(conn, _ADD_ORG, {"name": first, "now": MOMENT})
        uow.rules.finish(conn, [(_ADD_ORG, {"name": last, "now": MOMENT})])


def test_an_error_in_the_last_statements_rolls_the_whole_transaction_back(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        run(conn, _ADD_ORG, {"name": "taken", "now": MOMENT})
    with pytest.raises(sa.exc.IntegrityError):
        _add_then_finish(uow, "lost", "taken")
    with uow.write() as conn:  # the connection is fit for the next transaction
        assert run(conn, _ORG, {"name": "lost"}).first() is None


def _announce_then_fail(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        uow.rules.announce(conn, "test_news", "rolled back")
        raise RuntimeError("rolled back")


@pytest.mark.postgres
def test_announcements_are_sent_by_the_commit_and_only_by_it(pg_uow: UnitOfWork) -> None:
    uow = pg_uow
    listener = psycopg.connect(libpq_conninfo(uow.engine.url.render_as_string(False)), autocommit=True)
    listener.execute("LISTEN test_news")

    def heard() -> list[str]:
        # The commit has returned: what it sent is on its way already.
        return [n.payload for n in listener.notifies(timeout=0.3)]

    try:
        with pytest.raises(RuntimeError):
            _announce_then_fail(uow)
        with uow.write() as conn:  # no statement of its own: the engine's commit sends it
            assert conn.info.get(AT_COMMIT, []) == []  # what the rolled-back one left is gone
            uow.rules.announce(conn, "test_news", "committed")
        assert heard() == ["committed"]
        with uow.write() as conn:
            uow.rules.announce(conn, "test_news", "with the last statements")
            uow.rules.finish(conn, [(_ADD_ORG, {"name": "announced", "now": MOMENT})])
        assert heard() == ["with the last statements"]
        with uow.write() as conn:  # nothing is left over from earlier transactions
            run(conn, _ORG, {"name": "announced"})
        assert heard() == []
    finally:
        listener.close()


_BACKEND = Statement(sa.select(sa.func.pg_backend_pid()))


def _backend_of_a_write(uow: UnitOfWork) -> int:
    with uow.write() as conn:
        return int(run(conn, _BACKEND).scalar())


def _terminate(uow: UnitOfWork, pid: int) -> None:
    """End the backend of a connection now back in the pool, as a database restart would."""
    with psycopg.connect(libpq_conninfo(uow.engine.url.render_as_string(False)), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_a_pooled_connection_idle_for_a_while_is_checked_and_replaced_if_dead(
    pg_uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_uow.engine.pool.dispose()
    first = _backend_of_a_write(pg_uow)
    _terminate(pg_uow, first)
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # every connection idle "long"
    assert _backend_of_a_write(pg_uow) != first


@pytest.mark.postgres
def test_a_connection_that_broke_in_use_is_never_handed_out_again(pg_uow: UnitOfWork) -> None:
    pg_uow.engine.pool.dispose()
    first = _backend_of_a_write(pg_uow)
    _terminate(pg_uow, first)
    # Given back a moment ago, it is not checked first: its next transaction fails, once.
    with pytest.raises(sa.exc.OperationalError):
        _backend_of_a_write(pg_uow)
    assert _backend_of_a_write(pg_uow) != first


def _start_with_run(uow: UnitOfWork, conn: sa.Connection, name: str) -> None:
    run(conn, _ADD_ORG, {"name": name, "now": MOMENT})


def _start_with_run_many(uow: UnitOfWork, conn: sa.Connection, name: str) -> None:
    run_many(conn, _ADD_ORG, [{"name": name, "now": MOMENT}])


def _start_with_core(uow: UnitOfWork, conn: sa.Connection, name: str) -> None:
    conn.execute(organizations.insert().values(name=name, created_at=MOMENT))


def _start_at_commit(uow: UnitOfWork, conn: sa.Connection, name: str) -> None:
    uow.rules.write_at_commit(conn, _ADD_ORG, [{"name": name, "now": MOMENT}])


def _start_then_fail(uow: UnitOfWork, start: Any) -> None:
    with uow.write() as conn:
        start(uow, conn, "undone")
        run(conn, _ADD_ORG, {"name": "undone too", "now": MOMENT})
        raise RuntimeError("rolled back")


@pytest.mark.parametrize("start", [_start_with_run, _start_with_run_many, _start_with_core, _start_at_commit])
def test_a_transaction_is_whole_however_its_first_statement_runs(uow: UnitOfWork, start: Any) -> None:
    # PostgreSQL begins a transaction with its first statement, whichever way that one is sent.
    with pytest.raises(RuntimeError):
        _start_then_fail(uow, start)
    with uow.write() as conn:
        start(uow, conn, "kept")
        run(conn, _ADD_ORG, {"name": "kept too", "now": MOMENT})
    with uow.read() as conn:
        found = {name: run(conn, _ORG, {"name": name}).first() is not None for name in _NAMES}
    assert found == {"undone": False, "undone too": False, "kept": True, "kept too": True}


_NAMES = ("undone", "undone too", "kept", "kept too")


@pytest.mark.postgres
def test_a_transaction_begins_in_the_round_trip_of_its_first_statement(
    pg_uow: UnitOfWork, tmp_path: Path
) -> None:
    trace = tmp_path / "libpq.trace"
    with pg_uow.write() as conn, trace.open("w") as out:
        pgconn = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
        run(conn, _ADD_ORG, {"name": "traced", "now": MOMENT})
        run(conn, _ORG, {"name": "traced"}).one()
        uow_finish = pg_uow.rules.finish(conn, [(_ORG, {"name": "traced"})])
        pgconn.untrace()
    assert uow_finish[0].one().name == "traced"
    sent = [line.split("\t")[2] for line in trace.read_text().splitlines() if line.startswith("F\t")]
    # Each Sync (extended protocol) or Query (simple) is one wait for the server: three in all,
    # where a BEGIN of its own would make four.
    assert [kind for kind in sent if kind in ("Sync", "Query")] == ["Sync", "Sync", "Sync"]
    assert sent.count("Parse") + sent.count("Bind") >= 3  # BEGIN, then the statements, extended
