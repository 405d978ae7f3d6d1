"""The rate-limit counters (storage.rate_counters) under limits' fixed-window strategy, on the fake clock.

Every behaviour runs on the in-memory counters and on the database counters of both databases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from pendingtx.config import Settings
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.rate_counters import SWEEP_SECONDS, Counters, MemoryCounters
from pendingtx.storage.tables import rate_counters
from tests import databases
from tests.services.conftest import CountersOn
from tests.support import FakeClock

Engines = Callable[[], sa.Engine]


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _engines(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engines]:
    """New engines (as separate processes would have) on one fresh database of the kind under test."""
    with ExitStack() as stack:
        url = ""
        if kind == "sqlite":
            url = databases.sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
        elif kind == "postgresql":
            url = stack.enter_context(request.getfixturevalue("postgres_databases").database())

        def engine() -> sa.Engine:
            made = make_engine(Settings(database_url=url))
            stack.callback(made.dispose)
            return made

        yield engine


@pytest.fixture(params=["memory", *DATABASES])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engines(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engines]:
    yield from _engines(kind, request, tmp_path)


@pytest.fixture(params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_engines(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engines]:
    yield from _engines(db_kind, request, tmp_path)


@pytest.fixture
def make_counters(
    counters_on: CountersOn, kind: str, engines: Engines, clock: FakeClock
) -> Callable[[], Counters]:
    """Counters as one process sees them (the database kinds share their counts between calls)."""

    def make() -> Counters:
        return MemoryCounters(clock) if kind == "memory" else counters_on(engines(), clock)

    return make


@pytest.fixture
def counters(make_counters: Callable[[], Counters]) -> Counters:
    return make_counters()


# --- the Storage interface ------------------------------------------------------------------------


def test_incr_counts_within_a_window_and_starts_over_after_it(counters: Storage, clock: FakeClock) -> None:
    assert [counters.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert counters.incr("k", 60, amount=5) == 8
    assert counters.get("k") == 8
    clock.advance(59.9)
    assert counters.get("k") == 8
    clock.advance(0.1)
    assert counters.get("k") == 0
    assert counters.incr("k", 60) == 1


def test_a_window_opens_at_the_first_hit_and_later_hits_do_not_extend_it(
    counters: Storage, clock: FakeClock
) -> None:
    start = clock().timestamp()
    counters.incr("k", 60)
    clock.advance(45)
    counters.incr("k", 60)
    assert counters.get_expiry("k") == pytest.approx(start + 60)
    clock.advance(15)
    counters.incr("k", 60)
    assert counters.get_expiry("k") == pytest.approx(start + 120)


def test_keys_are_counted_apart(counters: Storage) -> None:
    counters.incr("a", 60)
    counters.incr("a", 60)
    counters.incr("b", 60)
    assert (counters.get("a"), counters.get("b"), counters.get("c")) == (2, 1, 0)


def test_an_unknown_key_has_no_hits_and_expires_now(counters: Storage, clock: FakeClock) -> None:
    assert counters.get("missing") == 0
    assert counters.get_expiry("missing") == pytest.approx(clock().timestamp())


def test_clear_and_reset(counters: Storage) -> None:
    for key in ("a", "b", "c"):
        counters.incr(key, 60)
    counters.clear("a")
    assert (counters.get("a"), counters.get("b")) == (0, 1)
    assert counters.reset() == 2
    assert (counters.get("b"), counters.get("c")) == (0, 0)
    assert counters.check() is True


# --- giving hits back ---------------------------------------------------------------------------------


def test_release_gives_hits_back_within_the_window(counters: Counters, clock: FakeClock) -> None:
    start = clock().timestamp()
    for _ in range(3):
        counters.incr("k", 60)
    counters.release("k")
    assert counters.get("k") == 2
    counters.release("k", amount=5)  # never below zero
    assert counters.get("k") == 0
    counters.release("missing")  # no window: nothing to give back, none opened
    assert counters.get("missing") == 0
    assert counters.get_expiry("missing") == pytest.approx(start)


def test_a_window_whose_hits_were_all_given_back_is_no_window(counters: Counters, clock: FakeClock) -> None:
    counters.incr("k", 60)
    counters.release("k")
    clock.advance(30)
    reopened = clock().timestamp()
    assert counters.incr("k", 60) == 1
    assert counters.get_expiry("k") == pytest.approx(reopened + 60)


def test_release_does_not_reach_into_a_closed_window(counters: Counters, clock: FakeClock) -> None:
    counters.incr("k", 60)
    clock.advance(60)
    counters.release("k")
    assert counters.incr("k", 60) == 1
    assert counters.get("k") == 1


# --- through limits' fixed-window strategy ---------------------------------------------------------


def test_fixed_window_limiter_allows_the_amount_then_refuses_until_the_window_closes(
    counters: Storage, clock: FakeClock
) -> None:
    limiter = FixedWindowRateLimiter(counters)
    item = RateLimitItemPerMinute(3, namespace="test")
    start = clock().timestamp()
    assert [limiter.hit(item, "app-1") for _ in range(4)] == [True, True, True, False]
    assert limiter.test(item, "app-1") is False
    assert limiter.hit(item, "app-2") is True  # another caller has its own count
    stats = limiter.get_window_stats(item, "app-1")
    assert (stats.reset_time, stats.remaining) == (pytest.approx(start + 60), 0)
    clock.advance(59)
    assert limiter.hit(item, "app-1") is False
    clock.advance(1)
    assert limiter.test(item, "app-1") is True
    assert limiter.hit(item, "app-1") is True
    assert limiter.get_window_stats(item, "app-1").remaining == 2


def test_a_window_of_several_seconds(counters: Storage, clock: FakeClock) -> None:
    limiter = FixedWindowRateLimiter(counters)
    item = RateLimitItemPerSecond(2, 300, namespace="test")
    assert limiter.hit(item, "x")
    clock.advance(299)
    assert limiter.hit(item, "x")
    assert not limiter.hit(item, "x")
    clock.advance(1)
    assert limiter.hit(item, "x")


# --- shared between processes, exact under concurrency (database counters) ------------------------


def test_database_counters_are_shared_between_processes(
    counters_on: CountersOn, db_engines: Engines, clock: FakeClock
) -> None:
    first, second = (
        counters_on(db_engines(), clock),
        counters_on(db_engines(), clock),
    )
    assert first.incr("shared", 60) == 1
    assert second.incr("shared", 60) == 2
    assert first.incr("shared", 60) == 3
    assert second.get("shared") == 3
    clock.advance(60)
    assert second.incr("shared", 60) == 1


def test_concurrent_hits_are_counted_exactly(
    kind: str, make_counters: Callable[[], Storage], clock: FakeClock
) -> None:
    threads, hits = 4, 40
    seen: list[int] = []
    lock = threading.Lock()
    # Each thread its own counters (its own engine for the database kinds), or one shared in memory.
    shared = make_counters()
    per_thread = [shared if kind == "memory" else make_counters() for _ in range(threads)]

    def run(counters: Storage) -> None:
        for _ in range(hits):
            value = counters.incr("busy", 60)
            with lock:
                seen.append(value)

    workers = [threading.Thread(target=run, args=(c,)) for c in per_thread]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(seen) == list(range(1, threads * hits + 1))
    assert shared.get("busy") == threads * hits


# --- expired counters are deleted --------------------------------------------------------------------


def test_memory_counters_forget_expired_windows(clock: FakeClock) -> None:
    counters = MemoryCounters(clock)
    for key in ("a", "b"):
        counters.incr(key, 60)
    counters.incr("long", 600)
    clock.advance(SWEEP_SECONDS + 1)
    counters.incr("c", 60)  # a new window past the sweep interval sweeps
    assert len(counters) == 2
    assert (counters.get("long"), counters.get("c")) == (1, 1)


def test_database_counters_delete_expired_rows(
    counters_on: CountersOn, db_engines: Engines, clock: FakeClock
) -> None:
    engine = db_engines()
    counters = counters_on(engine, clock)
    for key in ("a", "b"):
        counters.incr(key, 60)
    counters.incr("long", 600)
    clock.advance(SWEEP_SECONDS + 1)
    counters.incr("c", 60)  # the first hit past the sweep interval sweeps
    with engine.connect() as conn:
        left = conn.execute(sa.select(rate_counters.c.key).order_by(rate_counters.c.key)).scalars().all()
    assert left == ["c", "long"]
    assert counters.sweep() == 0


@pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_counters_table_is_unlogged_on_postgresql(db_engines: Engines) -> None:
    with db_engines().connect() as conn:
        persistence = conn.exec_driver_sql(
            "SELECT relpersistence FROM pg_class WHERE relname = 'rate_counters'"
        ).scalar()
    assert persistence == "u"
