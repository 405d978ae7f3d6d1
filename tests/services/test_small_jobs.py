"""Small waiting jobs claimed, applied and finished together in one transaction."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from pendingtx.bootstrap import Runtime
from pendingtx.domain.jobs import JobKind, JobStatus
from pendingtx.services import job_status, processing
from pendingtx.services.authentication import Caller
from pendingtx.services.small_jobs import pick_small
from pendingtx.storage import holds
from pendingtx.storage.claim import Candidate
from pendingtx.storage.tables import job_claims, jobs, transactions
from tests.services.conftest import Submit, job_view
from tests.support import FakeClock, record


def status(runtime: Runtime, caller: Caller, key: str) -> job_status.JobView:
    return job_view(runtime, caller, key)


def commits_during(runtime: Runtime) -> list[int]:
    counted = [0]

    @event.listens_for(runtime.engine, "commit")
    def _count(_: sa.Connection) -> None:
        counted[0] += 1

    return counted


def test_waiting_small_jobs_are_done_in_one_transaction(
    runtime: Runtime, caller: Caller, submit: Submit, caplog: pytest.LogCaptureFixture
) -> None:
    keys = [submit([record(f"S-{i}"), record(f"S-{i}b", amount="0")]).key for i in range(5)]
    commits = commits_during(runtime)
    with caplog.at_level(logging.INFO, logger="pendingtx.worker"):
        assert runtime.new_worker().run_once()
    assert commits[0] == 2  # the claim, then the work and the verdicts
    assert "failed" not in caplog.text  # the batch itself worked: nothing fell back to one at a time
    for key in keys:
        view = status(runtime, caller, key)
        assert view.job.status is JobStatus.PARTIALLY_COMPLETED
        assert (view.job.processed_count, view.job.created_count, view.job.failed_count) == (2, 1, 1)
        assert [p.field for p in view.problems] == ["amount"]
    with runtime.engine.connect() as conn:
        claims = conn.execute(sa.select(job_claims.c.attempt, job_claims.c.ended_at))
        assert [(c.attempt, c.ended_at is not None) for c in claims] == [(1, True)] * 5
        attempts = conn.execute(sa.select(jobs.c.attempts, jobs.c.worker_id, jobs.c.started_at)).all()
        assert all(a == 1 and w is None and s is not None for a, w, s in attempts)


def test_an_externalid_repeated_across_jobs_of_a_batch_is_created_once(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    first = submit([record("R-1")]).key
    second = submit([record("R-2"), record("R-1")]).key
    assert runtime.new_worker().run_once()
    assert status(runtime, caller, first).job.status is JobStatus.COMPLETED
    view = status(runtime, caller, second)
    assert view.job.status is JobStatus.PARTIALLY_COMPLETED
    assert [(p.index, p.reason) for p in view.problems] == [(1, "already exists in the organization")]
    with runtime.engine.connect() as conn:
        stored = conn.execute(sa.select(transactions.c.external_id).order_by(transactions.c.id))
        assert [r[0] for r in stored] == ["R-1", "R-2"]


def test_a_large_job_at_the_head_of_the_queue_goes_alone_and_first(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    chunk = runtime.settings.worker_chunk_size
    large = submit([record(f"L-{i}") for i in range(chunk + 1)]).key
    small = submit([record("L-small")]).key
    worker = runtime.new_worker()
    assert worker.run_once()
    assert status(runtime, caller, large).job.status is JobStatus.COMPLETED
    assert status(runtime, caller, small).job.status is JobStatus.SUBMITTED
    assert worker.run_once()
    assert status(runtime, caller, small).job.status is JobStatus.COMPLETED
    assert worker.run_once() is False


def test_an_undecodable_job_of_a_batch_is_given_up_and_the_others_done(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    good = submit([record("F-1")]).key
    bad = submit([record("F-2")]).key
    with runtime.uow.write() as conn:
        conn.execute(jobs.update().where(jobs.c.key == bad).values(payload=b"[{broken"))
    assert runtime.new_worker().run_once()
    assert status(runtime, caller, good).job.status is JobStatus.COMPLETED
    view = status(runtime, caller, bad)
    assert view.job.status is JobStatus.FAILED
    assert view.message == (
        "Failed: the stored batch could not be decoded; 0 of 1 transactions created, 1 not processed"
    )


def test_a_failing_batch_is_handed_back_unclaimed_and_its_jobs_taken_one_at_a_time(
    runtime: Runtime, caller: Caller, submit: Submit, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [submit([record(f"H-{i}")]).key for i in range(3)]
    real = processing.check_all
    failures = [1]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(processing, "check_all", flaky)
    worker = runtime.new_worker()
    assert worker.run_once()  # the batch fails and is handed back; the first job then goes alone
    assert [status(runtime, caller, k).job.status for k in keys] == [
        JobStatus.COMPLETED,
        JobStatus.SUBMITTED,
        JobStatus.SUBMITTED,
    ]
    worker.run_until_idle()
    with runtime.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.status, jobs.c.attempts, jobs.c.worker_id).order_by(jobs.c.id))
        assert [tuple(r) for r in rows] == [("Completed", 1, None)] * 3


def test_a_job_that_kills_its_worker_inside_a_batch_is_given_up_after_its_attempts(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = submit([record("K-1")]).key
    other = submit([record("K-2")]).key
    attempts = runtime.settings.worker_max_attempts

    def killed(*_: Any, **__: Any) -> Any:
        raise SystemExit("the process died")  # not an Exception: nothing in the worker catches it

    # A dead process hands nothing back: its claims simply stay until their leases run out.
    monkeypatch.setattr(holds, "unclaim", lambda *_, **__: None)
    monkeypatch.setattr(processing, "validate_raw", killed)
    for attempt in range(attempts):
        with pytest.raises(SystemExit):
            runtime.new_worker(f"host:{attempt}:dies").run_once()
        clock.advance(runtime.settings.worker_lease_seconds + 1)
    monkeypatch.undo()
    worker = runtime.new_worker()
    worker.run_until_idle()
    view = status(runtime, caller, key)
    assert view.job.status is JobStatus.FAILED
    assert f"gave up after {attempts} attempts" in view.message
    assert status(runtime, caller, other).job.status is JobStatus.COMPLETED


def candidate(
    job_id: int, records: int, *, status: JobStatus = JobStatus.SUBMITTED, kind: JobKind = JobKind.CREATE
) -> Candidate:
    return Candidate(job_id, 1, status, kind, records, None, b"[]")


def test_a_batch_is_the_longest_head_of_small_waiting_jobs() -> None:
    waiting = [candidate(1, 2), candidate(2, 3), candidate(3, 4), candidate(4, 1)]
    assert [j.id for j in pick_small(waiting, max_records=9)] == [1, 2, 3]
    assert [j.id for j in pick_small(waiting, max_records=10)] == [1, 2, 3, 4]
    assert pick_small([candidate(1, 11), candidate(2, 1)], max_records=10) == []
    resumed = candidate(2, 1, status=JobStatus.IN_PROGRESS)
    assert [j.id for j in pick_small([candidate(1, 1), resumed, candidate(3, 1)], max_records=10)] == [1]
    modification = candidate(2, 1, kind=JobKind.MODIFY)
    assert [j.id for j in pick_small([candidate(1, 1), modification], max_records=10)] == [1]
