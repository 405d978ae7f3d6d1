"""Write transactions of one process on SQLite queue on a lock instead of SQLite's sleeping busy handler."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pendingtx.config import Settings
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.tables import apps
from pendingtx.storage.unit_of_work import UnitOfWork


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
