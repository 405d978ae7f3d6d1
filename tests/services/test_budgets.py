"""Applications' budgets (services.abuse.Budget): over database counters, processes spend leases taken
from the shared count, and the budget is still never exceeded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from limits import RateLimitItemPerMinute
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from pendingtx import errors
from pendingtx.services.abuse import MAX_LEASE, Budget
from pendingtx.storage.rate_counters import MemoryCounters
from tests.services.conftest import CountersOn
from tests.services.test_rate_counters import DATABASES, Engines, _engines
from tests.support import FakeClock

APP = 7


@pytest.fixture(params=DATABASES)
def db_engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engines]:
    yield from _engines(str(request.param), request, tmp_path)


def budget(storage: Storage, limit: int, clock: FakeClock) -> Budget:
    item = RateLimitItemPerMinute(limit, namespace="test-budget")
    return Budget(FixedWindowRateLimiter(storage), item, clock=clock, what="requests")


def admitted(charge: Callable[[int], None], app_id: int = APP) -> bool:
    try:
        charge(app_id)
    except errors.RateLimited:
        return False
    return True


def spend(budgets: list[Budget], attempts: int) -> int:
    """Charge the budgets in turn, as requests landing on several processes; how many were admitted."""
    return sum(admitted(budgets[n % len(budgets)].charge) for n in range(attempts))


def test_processes_sharing_a_large_budget_never_exceed_it(
    counters_on: CountersOn, db_engines: Engines, clock: FakeClock
) -> None:
    limit = 1000  # leases of 10
    processes = [budget(counters_on(db_engines(), clock), limit, clock) for _ in range(3)]
    used = spend(processes, limit + 100)
    assert limit - 3 * (limit // 100) <= used <= limit
    assert spend(processes, 30) == 0
    clock.advance(60)
    assert spend(processes, 30) == 30


def test_a_refusal_gives_the_shared_windows_retry_after(
    counters_on: CountersOn, db_engines: Engines, clock: FakeClock
) -> None:
    processes = [budget(counters_on(db_engines(), clock), 1000, clock) for _ in range(2)]
    spend(processes, 1000)
    clock.advance(45)
    spend(processes, 60)  # past the unspent leases
    with pytest.raises(errors.RateLimited) as refused:
        processes[0].charge(APP)
    assert refused.value.headers["Retry-After"] == "15"


def test_under_200_a_window_every_request_is_counted_in_the_database(
    counters_on: CountersOn, db_engines: Engines, clock: FakeClock
) -> None:
    processes = [budget(counters_on(db_engines(), clock), 150, clock) for _ in range(2)]
    assert spend(processes, 200) == 150


def test_applications_have_their_own_leases(
    counters_on: CountersOn, db_engines: Engines, clock: FakeClock
) -> None:
    shared = budget(counters_on(db_engines(), clock), 500, clock)
    assert sum(admitted(shared.charge, APP) for _ in range(600)) == 500
    assert sum(admitted(shared.charge, APP + 1) for _ in range(600)) == 500


def test_threads_of_one_process_never_exceed_the_budget(
    counters_on: CountersOn, db_engines: Engines, clock: FakeClock
) -> None:
    limit = 2000
    shared = budget(counters_on(db_engines(), clock), limit, clock)
    counts: list[int] = []

    def run() -> None:
        counts.append(sum(admitted(shared.charge) for _ in range(600)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limit - 4 * (limit // 100) <= sum(counts) <= limit


def test_leases_are_bounded(counters_on: CountersOn, db_engines: Engines, clock: FakeClock) -> None:
    counters = counters_on(db_engines(), clock)
    huge = budget(counters, 10**9, clock)
    huge.charge(APP)
    assert counters.get(f"test-budget/{APP}/{10**9}/1/minute") == MAX_LEASE


def test_in_memory_every_request_is_counted(clock: FakeClock) -> None:
    counters = MemoryCounters(clock)
    alone = budget(counters, 10**6, clock)
    for _ in range(5):
        alone.charge(APP)
    assert counters.get(f"test-budget/{APP}/{10**6}/1/minute") == 5


def test_spending_a_lease_needs_no_storage_and_stops_when_it_runs_out(
    counters_on: CountersOn, db_engines: Engines, clock: FakeClock
) -> None:
    limit = 1000  # leases of 10
    process = budget(counters_on(db_engines(), clock), limit, clock)
    assert not process.spend_leased(APP)  # no lease taken yet
    process.charge(APP)  # takes a lease of 10 and spends one
    assert [process.spend_leased(APP) for _ in range(10)] == [True] * 9 + [False]
    clock.advance(seconds=61)
    process.charge(APP)
    clock.advance(seconds=61)
    assert not process.spend_leased(APP)  # the lease ended with its window


def test_spending_a_lease_never_admits_when_every_request_is_counted(clock: FakeClock) -> None:
    process = budget(MemoryCounters(clock), 1000, clock)
    process.charge(APP)
    assert not process.spend_leased(APP)
