"""The worker's use case against a real SQLite file: outcomes, takeovers, and crashes at any point."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from pendingtx.bootstrap import Runtime
from pendingtx.domain.jobs import JobKind
from pendingtx.services import job_status
from pendingtx.services.authentication import Caller
from pendingtx.storage import events
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.tables import job_problems, jobs, transactions
from tests.services.conftest import Submit, job_view
from tests.support import FakeClock, record


def status_of(runtime: Runtime, caller: Caller, key: str) -> job_status.JobView:
    return job_view(runtime, caller, key)


def stored_ids(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(transactions.c.external_id).order_by(transactions.c.id))]


def test_valid_records_are_applied_and_rejected_ones_explained(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    accepted = submit([record("A-1"), record("A-2", amount="0"), record("A-3", units="1")])
    runtime.new_worker().run_until_idle()
    view = status_of(runtime, caller, accepted.key)
    assert view.job.status.value == "Partially Completed"
    assert view.message == "Partially Completed: 1 of 3 transactions created; 2 rejected"
    assert [p.message() for p in view.problems] == [
        "[1] externalId=A-2: amount: must be greater than 0",
        "[2] externalId=A-3: units: not allowed for type New Subscription",
    ]
    assert stored_ids(runtime) == ["A-1"]


def test_all_valid_is_completed_and_all_invalid_is_failed(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    good = submit([record(f"G-{i}") for i in range(120)])
    bad = submit([record("B-1", type="Nope"), {"externalId": "B-2"}])
    runtime.new_worker().run_until_idle()
    assert status_of(runtime, caller, good.key).job.status.value == "Completed"
    failed = status_of(runtime, caller, bad.key)
    assert failed.job.status.value == "Failed"
    assert failed.message == "Failed: 0 of 2 transactions created; 2 rejected"
    assert failed.job.failed_count == 2


def test_single_object_body_is_a_batch_of_one(runtime: Runtime, caller: Caller, submit: Submit) -> None:
    accepted = submit(record("ONE"))
    runtime.new_worker().run_until_idle()
    assert status_of(runtime, caller, accepted.key).job.record_count == 1
    assert stored_ids(runtime) == ["ONE"]


def test_duplicates_within_batch_and_organization_are_rejected(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    submit([record("D-1")])
    runtime.new_worker().run_until_idle()
    accepted = submit([record("D-1"), record("D-2"), record("D-2")])
    runtime.new_worker().run_until_idle()
    view = status_of(runtime, caller, accepted.key)
    assert [p.message() for p in view.problems] == [
        "[0] externalId=D-1: externalId: already exists in the organization",
        "[2] externalId=D-2: externalId: repeats an earlier record of this batch",
    ]
    assert sorted(stored_ids(runtime)) == ["D-1", "D-2"]


def test_transfers_endpoint_rejects_non_transfers(runtime: Runtime, caller: Caller, submit: Submit) -> None:
    transfer = record("T-1", type="Full Transfer", amount=None, toInvestorExternalId="INV-9")
    accepted = submit([transfer, record("T-2")], kind=JobKind.TRANSFER)
    runtime.new_worker().run_until_idle()
    view = status_of(runtime, caller, accepted.key)
    assert view.job.status.value == "Partially Completed"
    assert view.problems[0].field == "type"
    assert view.problems[0].index == 1


def test_amounts_are_stored_exactly(runtime: Runtime, submit: Submit) -> None:
    submit([record("M-1", amount="9999999999999.99"), record("M-2", amount=0.1)])
    runtime.new_worker().run_until_idle()
    with runtime.engine.connect() as conn:
        amounts = dict(conn.execute(sa.select(transactions.c.external_id, transactions.c.amount)).all())
    assert str(amounts["M-1"]) == "9999999999999.99"
    assert str(amounts["M-2"]) == "0.1"


def test_a_taken_over_job_is_not_touched_by_its_old_holder(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock
) -> None:
    accepted = submit([record(f"L-{i}") for i in range(10)])
    old, new = runtime.new_worker("host:1:old"), runtime.new_worker("host:2:new")
    stale = old.claim()
    assert stale is not None
    clock.advance(runtime.settings.worker_lease_seconds + 1)
    assert new.run_once()
    # The old holder wakes up and carries on with the job it no longer holds.
    from pendingtx.services.errors import LeaseLost
    from pendingtx.services.processing import process_job

    with pytest.raises(LeaseLost):
        process_job(runtime.uow, stale, lease=old.lease, chunk_size=3, clock=clock)
    view = status_of(runtime, caller, accepted.key)
    assert view.job.status.value == "Completed"
    assert sorted(stored_ids(runtime)) == sorted(f"L-{i}" for i in range(10))


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the worker catches it."""


def crash_after(engine: sa.Engine, steps: int) -> None:
    """Make the engine 'die' at its `steps`-th statement or commit."""
    seen = 0

    def tick(*_: Any, **__: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == steps:
            raise Crash()

    event.listen(engine, "before_cursor_execute", tick)
    event.listen(engine, "commit", tick)


def count_steps(runtime: Runtime) -> int:
    """How many statements and commits a worker needs for one job (counted on a real run)."""
    seen = 0

    def tick(*_: Any, **__: Any) -> None:
        nonlocal seen
        seen += 1

    engine = make_engine(runtime.settings)
    event.listen(engine, "before_cursor_execute", tick)
    event.listen(engine, "commit", tick)
    Runtime(settings=runtime.settings, engine=engine, clock=runtime.clock).new_worker().run_until_idle()
    engine.dispose()
    return seen


def test_a_worker_dying_at_any_step_loses_nothing_and_applies_nothing_twice(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock
) -> None:
    def batch(prefix: str) -> list[dict[str, Any]]:
        # 7 records in chunks of 3, with a rejected one in the middle chunk.
        return [record(f"{prefix}-{i}", amount="-1" if i == 4 else "10") for i in range(7)]

    settings = runtime.settings.replace(worker_chunk_size=3)
    # The test's runtime with small chunks: its workers take the jobs in three chunks.
    runtime.settings = settings
    submit(batch("probe"))
    steps = count_steps(runtime)
    assert steps > 10
    for step in range(1, steps + 1):
        prefix = f"S{step}"
        accepted = submit(batch(prefix))
        engine = make_engine(settings)
        crash_after(engine, step)
        doomed = Runtime(settings=settings, engine=engine, clock=clock).new_worker(f"host:{step}:doomed")
        with pytest.raises(Crash):
            doomed.run_until_idle()
        engine.dispose()
        clock.advance(settings.worker_lease_seconds + 1)
        runtime.new_worker().run_until_idle()
        view = status_of(runtime, caller, accepted.key)
        assert view.job.status.value == "Partially Completed", step
        assert (view.job.processed_count, view.job.created_count, view.job.failed_count) == (7, 6, 1)
        assert [p.index for p in view.problems] == [4], step
        ids = [i for i in stored_ids(runtime) if i.startswith(f"{prefix}-")]
        assert sorted(ids) == sorted(f"{prefix}-{i}" for i in range(7) if i != 4), step
        # The log tells the job's story once, whoever finished it.
        with runtime.uow.read() as conn:
            story = events.page(conn, caller.org_id, after=0, limit=100, job_key=accepted.key)
        kinds = [e.type.value for e in story]
        assert kinds == ["job.submitted", "job.started", "job.progress", "job.progress", "job.completed"], step
        assert [e.processed_count for e in story[2:]] == [3, 6, 7], step


def test_an_undecodable_payload_fails_at_once(runtime: Runtime, caller: Caller, submit: Submit) -> None:
    accepted = submit([record("P-1")])
    with runtime.uow.write() as conn:
        conn.execute(jobs.update().where(jobs.c.key == accepted.key).values(payload=b"[{broken"))
    runtime.new_worker().run_until_idle()
    view = status_of(runtime, caller, accepted.key)
    assert view.job.status.value == "Failed"
    assert "could not be decoded" in view.message


def test_an_internal_error_is_retried_then_fails_with_a_message(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = submit([record("E-1")])

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr("pendingtx.services.processing.validate_raw", broken)
    worker = runtime.new_worker()
    for _ in range(runtime.settings.worker_max_attempts):
        assert worker.run_once()
        assert worker.run_once() is False  # backing off: not claimable yet
        clock.advance(120)
    view = status_of(runtime, caller, accepted.key)
    assert view.job.status.value == "Failed"
    assert "internal error" in view.message
    with runtime.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_problems)).scalar() == 0
