"""Acceptances committed together: each submitter gets its own answer, or its own error."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import msgspec
import pytest

from pendingtx import errors
from pendingtx.bootstrap import Runtime
from pendingtx.domain.jobs import JobKind
from pendingtx.services import enqueue as storing
from pendingtx.services.authentication import Caller
from pendingtx.services.enqueue import Idempotency, NewJob
from pendingtx.services.group_commit import GroupCommit
from pendingtx.storage.tables import jobs
from tests.support import FakeClock, record


def job(external_id: str) -> NewJob:
    return NewJob(JobKind.CREATE, msgspec.json.encode([record(external_id)]), 1)


def stored_keys(runtime: Runtime) -> set[str]:
    with runtime.engine.connect() as conn:
        return {r[0] for r in conn.execute(jobs.select().with_only_columns(jobs.c.key))}


class HeldClock:
    """A clock that, once armed, blocks its first reader until released: the writer is then busy."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.armed = False
        self.reading = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> datetime:
        if self.armed:
            self.armed = False
            self.reading.set()
            assert self.release.wait(10)
        return self.clock()


def test_acceptances_waiting_together_are_answered_each_on_its_own(
    runtime: Runtime, caller: Caller, clock: FakeClock
) -> None:
    held = HeldClock(clock)
    notified: list[int] = []
    group = GroupCommit(runtime.uow, clock=held, notify=lambda: notified.append(1))
    try:
        earlier = group.submit(caller, job("G-0"), Idempotency("k-1", "digest-a")).result(10)
        group.submit(caller, job("G-00"), Idempotency("k-2", "digest-a")).result(10)
        held.armed = True
        first = group.submit(caller, job("G-1"), None)
        assert held.reading.wait(10)  # the writer is inside the first one's transaction
        reused = group.submit(caller, job("G-2"), Idempotency("k-1", "digest-a"))
        conflicting = group.submit(caller, job("G-3"), Idempotency("k-2", "digest-b"))
        fresh = group.submit(caller, job("G-4"), None)
        held.release.set()
        assert first.result(10).key != fresh.result(10).key
        assert reused.result(10) == earlier
        with pytest.raises(errors.IdempotencyKeyReused, match="Idempotency-Key"):
            conflicting.result(10)
    finally:
        group.close()
    assert len(stored_keys(runtime)) == 4
    assert {earlier.key, first.result().key, fresh.result().key} <= stored_keys(runtime)
    assert notified  # workers are woken after the commits


def test_an_acceptance_that_breaks_the_shared_transaction_fails_alone(
    runtime: Runtime, caller: Caller, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = storing.store_in

    def store_in(conn: Any, who: Caller, new: NewJob, *args: Any, **options: Any) -> storing.AcceptedJob:
        if b"BROKEN" in new.payload:
            raise RuntimeError("database trouble")
        return real(conn, who, new, *args, **options)

    monkeypatch.setattr(storing, "store_in", store_in)
    held = HeldClock(clock)
    group = GroupCommit(runtime.uow, clock=held, notify=lambda: None)
    try:
        held.armed = True
        first = group.submit(caller, job("B-1"), None)
        assert held.reading.wait(10)
        broken = group.submit(caller, job("BROKEN"), None)
        after = group.submit(caller, job("B-2"), None)
        held.release.set()
        with pytest.raises(RuntimeError, match="database trouble"):
            broken.result(10)
        keys = {first.result(10).key, after.result(10).key}
    finally:
        group.close()
    assert stored_keys(runtime) == keys


def test_closing_commits_what_is_waiting_then_refuses(
    runtime: Runtime, caller: Caller, clock: FakeClock
) -> None:
    group = GroupCommit(runtime.uow, clock=clock, notify=lambda: None)
    waiting = [group.submit(caller, job(f"C-{i}"), None) for i in range(5)]
    group.close()
    assert stored_keys(runtime) == {w.result(0).key for w in waiting}
    with pytest.raises(errors.ServiceUnavailable):
        group.submit(caller, job("C-late"), None)


def test_a_request_cancelled_while_waiting_is_not_stored_and_the_writer_goes_on(
    runtime: Runtime, caller: Caller, clock: FakeClock
) -> None:
    held = HeldClock(clock)
    group = GroupCommit(runtime.uow, clock=held, notify=lambda: None)
    try:
        held.armed = True
        first = group.submit(caller, job("X-1"), None)
        assert held.reading.wait(10)
        cancelled = group.submit(caller, job("X-2"), None)
        assert cancelled.cancel()  # as when the server gives up on the request's task
        waiting = group.submit(caller, job("X-3"), None)
        held.release.set()
        keys = {first.result(10).key, waiting.result(10).key}
        later = group.submit(caller, job("X-4"), None).result(10)
    finally:
        group.close()
    assert stored_keys(runtime) == keys | {later.key}


def test_a_key_waiting_or_being_stored_is_refused_at_once_then_free_again(
    runtime: Runtime, caller: Caller, clock: FakeClock
) -> None:
    held = HeldClock(clock)
    group = GroupCommit(runtime.uow, clock=held, notify=lambda: None)
    try:
        held.armed = True
        first = group.submit(caller, job("K-1"), Idempotency("k", "digest-a"))
        assert held.reading.wait(10)  # the first is inside its transaction
        with pytest.raises(errors.IdempotencyKeyInUse):
            group.submit(caller, job("K-1"), Idempotency("k", "digest-a"))
        with pytest.raises(errors.IdempotencyKeyInUse):
            group.submit(caller, job("K-2"), Idempotency("k", "digest-b"))
        waiting = group.submit(caller, job("K-3"), Idempotency("other", "digest-c"))
        with pytest.raises(errors.IdempotencyKeyInUse):  # waiting behind the first one
            group.submit(caller, job("K-3"), Idempotency("other", "digest-c"))
        held.release.set()
        accepted = (first.result(10), waiting.result(10))
        assert group.submit(caller, job("K-1"), Idempotency("k", "digest-a")).result(10) == accepted[0]
        assert group.submit(caller, job("K-3"), Idempotency("other", "digest-c")).result(10) == accepted[1]
    finally:
        group.close()
    assert len(stored_keys(runtime)) == 2


def test_a_cancelled_request_frees_its_key(runtime: Runtime, caller: Caller, clock: FakeClock) -> None:
    held = HeldClock(clock)
    group = GroupCommit(runtime.uow, clock=held, notify=lambda: None)
    try:
        held.armed = True
        first = group.submit(caller, job("Y-1"), None)
        assert held.reading.wait(10)
        cancelled = group.submit(caller, job("Y-2"), Idempotency("k", "digest-a"))
        assert cancelled.cancel()
        again = group.submit(caller, job("Y-2"), Idempotency("k", "digest-a"))
        held.release.set()
        assert again.result(10).key != first.result(10).key
    finally:
        group.close()
