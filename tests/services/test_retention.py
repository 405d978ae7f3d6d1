"""Retention (contract 7.4): terminal jobs past the period are deleted with their problems, claims
and events, in small batches, leaving tombstones; transactions and unfinished jobs stay."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pendingtx.bootstrap import Runtime
from pendingtx.services import retention
from pendingtx.services.authentication import Caller
from pendingtx.storage import events as event_repo
from pendingtx.storage import retention as retention_repo
from pendingtx.storage import sandbox as sandbox_repo
from pendingtx.storage.driver import Statement, run
from pendingtx.storage.tables import events, job_claims, job_problems, job_tombstones, jobs, transactions
from tests.services.conftest import Submit
from tests.support import FakeClock, record


def count(runtime: Runtime, table: sa.Table) -> int:
    with runtime.uow.read() as conn:
        return int(run(conn, Statement(sa.select(sa.func.count().label("n")).select_from(table))).scalar())


def test_a_sweep_deletes_old_terminal_jobs_and_all_that_belongs_to_them(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = [submit([record(f"O{j}-{i}", amount="0" if i == 0 else "5") for i in range(3)]) for j in range(5)]
    runtime.new_worker().run_until_idle()
    clock.advance(100)
    young = submit([record("Y-1", amount="0")])
    waiting = submit([record("W-1")])
    runtime.new_worker().run_until_idle()
    clock.advance(1)
    assert count(runtime, job_problems) == 6
    kept_events = count(runtime, events)

    # Tiny batches: the sweep takes several transactions, each one small.
    monkeypatch.setattr(retention, "BATCH_RECORDS", 6)
    deleted = retention.sweep(runtime.uow, retention_period=timedelta(seconds=50), clock=clock)
    assert deleted == 5
    assert count(runtime, jobs) == 2
    assert count(runtime, job_problems) == 1
    assert count(runtime, job_claims) == 2
    assert count(runtime, events) == kept_events - 5 * 3  # submitted, started, completed each
    assert count(runtime, job_tombstones) == 5
    assert count(runtime, transactions) == 5 * 2 + 1  # every transaction stays
    with runtime.uow.read() as conn:
        assert all(retention_repo.swept(conn, caller.org_id, a.key) for a in old)
        assert not retention_repo.swept(conn, caller.org_id + 1000, old[0].key)
        assert not retention_repo.swept(conn, caller.org_id, young.key)
    assert retention.sweep(runtime.uow, retention_period=timedelta(seconds=50), clock=clock) == 0
    assert waiting.key != young.key


def test_the_workers_process_sweeps_on_its_own(runtime: Runtime, submit: Submit) -> None:
    submit([record("S-1")])
    runtime.new_worker().run_until_idle()
    # A fraction of a day: about 0.09 s; the clock is fake, so the job is past it once it moves.
    runtime.settings = runtime.settings.replace(job_retention_days=0.000001, retention_sweep_seconds=0.05)
    assert isinstance(runtime.clock, FakeClock)
    runtime.clock.advance(1)
    pool = runtime.worker_pool()
    pool.start()
    try:
        deadline = time.monotonic() + 30
        while count(runtime, jobs) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        pool.stop(10)
    assert count(runtime, jobs) == 0
    assert count(runtime, job_tombstones) == 1
    assert count(runtime, transactions) == 1


def test_numbering_goes_on_after_the_newest_events_were_deleted(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock
) -> None:
    # Every event of the organization goes, the newest included; a client resuming after the last
    # sequence it saw must still see the next job's events, so numbers never go back.
    submit([record("A-1")])
    runtime.new_worker().run_until_idle()
    with runtime.uow.read() as conn:
        before = event_repo.last_sequence(conn, caller.org_id)
    assert before == 3
    clock.advance(100)
    assert retention.sweep(runtime.uow, retention_period=timedelta(seconds=50), clock=clock) == 1
    assert count(runtime, events) == 0
    with runtime.uow.read() as conn:
        assert event_repo.last_sequence(conn, caller.org_id) == before
    after = submit([record("B-1")])
    runtime.new_worker().run_until_idle()
    with runtime.uow.read() as conn:
        logged = event_repo.page(conn, caller.org_id, after=0, limit=10)
    assert [(e.job_key, e.sequence) for e in logged] == [(after.key, before + n) for n in (1, 2, 3)]
    # A sandbox reset deletes them all at once, and numbering goes on too.
    sandbox_repo.reset_organization(runtime.uow, caller.org_id)
    submit([record("C-1")])
    with runtime.uow.read() as conn:
        assert [e.sequence for e in event_repo.page(conn, caller.org_id, after=0, limit=10)] == [before + 4]
