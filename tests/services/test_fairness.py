"""Organizations are served in turn: one tenant's backlog never holds another's job behind it."""

from __future__ import annotations

import dataclasses

import pytest

from pendingtx.bootstrap import Runtime
from pendingtx.domain.jobs import JobStatus
from pendingtx.services.authentication import Caller
from pendingtx.storage import apps as app_repo
from pendingtx.storage.claim import organizations_in_turn
from pendingtx.storage.tables import organizations
from tests.conftest import register
from tests.services.conftest import Submit, job_view, store
from tests.support import record


@pytest.fixture
def other_caller(runtime: Runtime) -> Caller:
    creds = register(runtime, name="b-app", org="tenant-b")
    with runtime.uow.read() as conn:
        app = app_repo.find_app(conn, creds.app_key)
    assert app is not None
    return Caller(app.id, app.app_key, app.name, app.org_id)


def _status(runtime: Runtime, caller: Caller, key: str) -> JobStatus:
    return job_view(runtime, caller, key).job.status


def _batch(prefix: str, size: int) -> list[dict[str, object]]:
    return [record(f"{prefix}-{i}") for i in range(size)]


def test_a_one_record_job_is_served_between_two_chunks_of_another_tenants_backlog(
    runtime: Runtime, submit: Submit, caller: Caller, other_caller: Caller
) -> None:
    # Chunks of 50 records: each of A's jobs takes three chunks.
    backlog = [submit(_batch(f"A{n}", 120)).key for n in range(3)]
    small = submit([record("B-1")], who=other_caller).key
    worker = runtime.new_worker()
    worker.config = dataclasses.replace(worker.config, fair_share_seconds=0.0)

    assert worker.run_once()  # A's first job: one chunk, then its turn is over as B waits
    assert _status(runtime, caller, backlog[0]) is JobStatus.IN_PROGRESS
    assert worker.run_once()  # B's turn
    assert _status(runtime, other_caller, small) is JobStatus.COMPLETED
    assert [_status(runtime, caller, key) for key in backlog] == [
        JobStatus.IN_PROGRESS,
        JobStatus.SUBMITTED,
        JobStatus.SUBMITTED,
    ]
    assert worker.run_until_idle()
    assert [_status(runtime, caller, key) for key in backlog] == [JobStatus.COMPLETED] * 3
    with runtime.uow.read() as conn:
        # A job handed back for another tenant's turn keeps its attempts: it never "fails" of it.
        attempts = conn.exec_driver_sql("SELECT max(attempts) FROM jobs").scalar()
    assert attempts == 1


def test_the_least_recently_served_organization_goes_first(
    runtime: Runtime, submit: Submit, caller: Caller, other_caller: Caller
) -> None:
    submit(_batch("A", 1))
    submit(_batch("B", 1), who=other_caller)
    with runtime.uow.read() as conn:
        # Never served: in the order of the organizations' ids.
        assert organizations_in_turn(conn, now=runtime.clock()) == [caller.org_id, other_caller.org_id]
    worker = runtime.new_worker()
    # Small jobs of both organizations go in one batch, each organization's first job in turn.
    assert worker.run_once()
    submit(_batch("A2", 1))
    submit(_batch("B2", 1), who=other_caller)
    with runtime.uow.write() as conn:
        conn.execute(
            organizations.update().where(organizations.c.id == other_caller.org_id).values(served_at=None)
        )
    with runtime.uow.read() as conn:
        assert organizations_in_turn(conn, now=runtime.clock()) == [other_caller.org_id, caller.org_id]


def test_small_jobs_of_several_tenants_are_interleaved_in_one_batch(
    runtime: Runtime, submit: Submit, caller: Caller, other_caller: Caller
) -> None:
    # More of A's jobs than one batch holds (64): B's is still in the first batch.
    many = [submit([record(f"A-{i}")]).key for i in range(70)]
    lone = submit([record("B-1")], who=other_caller).key
    worker = runtime.new_worker()
    assert worker.run_once()
    # One batch took B's job along with A's first ones, not after A's whole queue.
    assert _status(runtime, other_caller, lone) is JobStatus.COMPLETED
    assert _status(runtime, caller, many[0]) is JobStatus.COMPLETED
    assert _status(runtime, caller, many[-1]) is JobStatus.SUBMITTED


def test_modifications_of_one_transaction_keep_their_order_across_turns(
    runtime: Runtime, submit: Submit, caller: Caller, other_caller: Caller
) -> None:
    from pendingtx.services import modifications

    submit([record("M-1")])
    runtime.new_worker().run_until_idle()
    keys = [
        store(
            runtime,
            caller,
            modifications.modification_job(
                runtime.uow,
                caller,
                "M-1",
                body=f'{{"comments": "edit {n}"}}'.encode(),
                media_type="application/merge-patch+json",
                limits=runtime.settings.patch_limits,
            ),
        ).key
        for n in range(3)
    ]
    submit([record("B-1")], who=other_caller)
    runtime.new_worker().run_until_idle()
    assert [_status(runtime, caller, key) for key in keys] == [JobStatus.COMPLETED] * 3
    with runtime.uow.read() as conn:
        query = "SELECT comments FROM transactions WHERE external_id = 'M-1'"
        comments = conn.exec_driver_sql(query).scalar()
    assert comments == "edit 2"
