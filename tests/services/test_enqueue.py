"""Storing a job under an Idempotency-Key: once, and never waiting on another request's transaction."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import msgspec
import pytest

from pendingtx import errors
from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx.domain.jobs import JobKind
from pendingtx.services.authentication import Caller
from pendingtx.services.enqueue import AcceptedJob, Idempotency, NewJob, enqueue
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.unit_of_work import UnitOfWork
from tests.support import FakeClock, record

JOB = NewJob(JobKind.CREATE, msgspec.json.encode([record("E-1")]), 1)


def store(uow: UnitOfWork, caller: Caller, idempotency: Idempotency, clock: FakeClock) -> AcceptedJob:
    return enqueue(uow, caller, JOB, idempotency=idempotency, clock=clock, notify=lambda: None)


def test_a_key_reused_for_another_request_is_refused(
    runtime: Runtime, caller: Caller, clock: FakeClock
) -> None:
    first = store(runtime.uow, caller, Idempotency("k", "digest-a"), clock)
    assert store(runtime.uow, caller, Idempotency("k", "digest-a"), clock) == first
    with pytest.raises(errors.IdempotencyKeyReused):
        store(runtime.uow, caller, Idempotency("k", "digest-b"), clock)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_key_another_process_is_storing_is_refused_without_waiting(
    runtime: Runtime, caller: Caller, clock: FakeClock, settings: Settings
) -> None:
    inside, release = threading.Event(), threading.Event()

    def held() -> datetime:  # read inside the first transaction, after its key is reserved
        inside.set()
        assert release.wait(10), "never released"
        return clock()

    # Another process's connections: nothing in this process knows of the first request.
    elsewhere = UnitOfWork(make_engine(settings))
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(
                enqueue,
                runtime.uow,
                caller,
                JOB,
                idempotency=Idempotency("k", "d"),
                clock=held,
                notify=lambda: None,
            )
            assert inside.wait(10)
            # Waiting on the first transaction here would hold it (and this test) until `held` gives up.
            with pytest.raises(errors.IdempotencyKeyInUse):
                store(elsewhere, caller, Idempotency("k", "d"), clock)
            with pytest.raises(errors.IdempotencyKeyInUse):
                store(elsewhere, caller, Idempotency("k", "other"), clock)
            release.set()
            accepted = first.result(10)
        assert store(elsewhere, caller, Idempotency("k", "d"), clock) == accepted
        assert store(elsewhere, caller, Idempotency("k2", "d"), clock) != accepted
    finally:
        release.set()
        elsewhere.engine.dispose()
