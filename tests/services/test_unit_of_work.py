"""Write transactions of one process on SQLite queue on a lock instead of SQLite's sleeping busy handler."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pendingtx.config import Settings
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.tables import apps
from pendingtx.storage.unit_of_work import MAX_KEEPING_THREADS, UnitOfWork


@pytest.fixture
def impatient(settings: Settings) -> Iterator[UnitOfWork]:
    # No busy timeout at all: a writer that found the database locked would fail at once.
    engine = make_engine(settings.replace(sqlite_busy_timeout_ms=0))
    yield UnitOfWork(engine)
    engine.dispose()


def test_concurrent_writers_of_one_process_take_turns(impatient: UnitOfWork) -> None:
    failures: list[BaseException] = []

    def write_many(who: int) -> None:
        try:
            for i in range(30):
                with impatient.write() as conn:
                    conn.execute(sa.update(apps).values(name=sa.literal(f"{who}-{i}")))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write_many, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_failed_write_lets_the_next_one_in(impatient: UnitOfWork) -> None:
    with pytest.raises(RuntimeError), impatient.write():
        raise RuntimeError("rolled back")
    done = threading.Event()

    def write() -> None:
        with impatient.write() as conn:
            conn.execute(sa.update(apps).values(name="after"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    assert done.is_set()


def _write_then_fail(uow: UnitOfWork) -> None:
    with uow.write() as conn:
        conn.execute(sa.update(apps).values(name="never"))
        raise RuntimeError("rolled back")


def test_a_thread_keeping_connections_reuses_them_until_a_write_fails(impatient: UnitOfWork) -> None:
    pool = impatient.engine.pool
    kept = impatient.rules.single_writer  # SQLite only: PostgreSQL's pool checks each checkout
    with impatient.keeping_connections():
        with impatient.write() as conn:
            first = conn.connection.driver_connection
        with impatient.write() as conn:
            again = conn.connection.driver_connection
        with impatient.write(redoable=True) as conn:
            other = conn.connection.driver_connection
        if kept:
            assert again is first
            assert other is not first
        assert pool.checkedout() == (2 if kept else 0)  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="rolled back"):
            _write_then_fail(impatient)
        # The connection of the failed write went back to the pool, rolled back.
        assert pool.checkedout() == (1 if kept else 0)  # type: ignore[attr-defined]
        with impatient.write() as conn:
            assert conn.execute(sa.select(apps.c.id).where(apps.c.name == "never")).first() is None
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


def test_only_a_few_threads_keep_connections_so_the_pool_never_runs_dry(tmp_path: Path) -> None:
    # SQLite only: PostgreSQL's connections stay with the pool.
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'kept.db'}"))
    impatient = UnitOfWork(engine)
    pool = engine.pool
    keeping, release = threading.Barrier(MAX_KEEPING_THREADS + 1), threading.Event()

    def keep() -> None:
        with impatient.keeping_connections():
            with impatient.write():
                pass
            keeping.wait(10)
            release.wait(10)

    threads = [threading.Thread(target=keep) for _ in range(MAX_KEEPING_THREADS)]
    for thread in threads:
        thread.start()
    keeping.wait(10)
    try:
        with impatient.keeping_connections():
            with impatient.write():
                pass
            assert pool.checkedout() == MAX_KEEPING_THREADS  # type: ignore[attr-defined]
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    engine.dispose()
