"""Sibling processes of one `serve --processes N` on SQLite (two runtimes on one file stand for two
processes): an application's budget holds across them, and each hears of the other's acceptances
and events at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pendingtx import errors
from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx.siblings import Place
from pendingtx.storage.driver.engine import make_engine
from tests import databases
from tests.support import FakeClock

LIMIT = 200


@pytest.fixture
def siblings(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    url = databases.sqlite_copy(sqlite_template, tmp_path)
    settings = Settings(database_url=url, app_requests_per_minute=LIMIT, log_level="warning")
    clock = FakeClock()
    (tmp_path / "siblings").mkdir()
    made = [
        Runtime(
            settings=settings,
            engine=make_engine(settings),
            clock=clock,
            place=Place(str(tmp_path / "siblings"), i, 2),
        )
        for i in range(2)
    ]
    yield made[0], made[1]
    for runtime in made:
        runtime.close()


def admitted(runtime: Runtime, app_id: int) -> bool:
    try:
        runtime.abuse.requests.charge(app_id)
    except errors.RateLimited:
        return False
    return True


def test_an_applications_budget_holds_across_sibling_processes(siblings: tuple[Runtime, Runtime]) -> None:
    first, second = siblings
    granted = sum(admitted(runtime, 7) for _ in range(LIMIT) for runtime in (first, second))
    # Each process takes leases of LIMIT // 100 requests: a lease the other holds unspent may refuse
    # a few early, but the two never grant more than the one budget between them.
    assert LIMIT - 2 * (LIMIT // 100) <= granted <= LIMIT


def test_a_sibling_hears_of_acceptances_and_events_at_once(siblings: tuple[Runtime, Runtime]) -> None:
    first, second = siblings
    assert first.siblings is not None
    assert second.siblings is not None
    jobs = threading.Event()
    events: list[str] = []
    told = threading.Event()

    def heard(payload: str) -> None:
        events.append(payload)
        told.set()

    receivers = [first.siblings.receiver(jobs.set, heard), second.siblings.receiver(lambda: None, heard)]
    for receiver in receivers:
        receiver.start()
    try:
        # The worker runs in process 0: an acceptance in process 1 wakes it there.
        second.notify_workers()
        assert jobs.wait(10)
        first.siblings.events_recorded({3: 41})
        assert told.wait(10)
    finally:
        for receiver in receivers:
            receiver.stop()
    assert events == ["3:41"]
