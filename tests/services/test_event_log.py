"""The event log: every transition of every job recorded once, in order, per organization, on both
databases; in the same transaction as the transition, so a crash at any step leaves neither a gap
nor a duplicate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from pendingtx.bootstrap import Runtime
from pendingtx.domain.events import Event, EventType
from pendingtx.services.authentication import Caller
from pendingtx.storage import apps as app_repo
from pendingtx.storage import events
from tests.conftest import AppCreds, register
from tests.services.conftest import Submit
from tests.support import FakeClock, record

SUBMITTED, STARTED, PROGRESS, COMPLETED = EventType


def log_of(runtime: Runtime, org_id: int, *, key: str | None = None) -> list[Event]:
    with runtime.uow.read() as conn:
        return events.page(conn, org_id, after=0, limit=10_000, job_key=key)


def other_caller(runtime: Runtime, caller: Caller) -> Caller:
    creds: AppCreds = register(runtime, name="globex-app", org="globex")
    with runtime.uow.read() as conn:
        app = app_repo.find_app(conn, creds.app_key)
    assert app is not None
    assert app.org_id != caller.org_id
    return Caller(app.id, app.app_key, app.name, app.org_id)


def test_each_job_tells_its_story_in_order_and_each_organization_counts_its_own(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    runtime.settings = runtime.settings.replace(worker_chunk_size=3)
    other = other_caller(runtime, caller)
    small = submit([record("S-1"), record("S-2", amount="0")])
    large = submit([record(f"L-{i}") for i in range(7)], who=other)
    theirs = submit([record("T-1")], who=other)
    runtime.clock.advance(0.123456)  # type: ignore[attr-defined]
    runtime.new_worker().run_until_idle()

    mine = log_of(runtime, caller.org_id)
    assert [e.sequence for e in mine] == list(range(1, len(mine) + 1))
    assert {e.job_key for e in mine} == {small.key}
    assert [e.type for e in mine] == [SUBMITTED, STARTED, COMPLETED]
    # A small job starts and ends in one transaction; its start still reads as a start.
    assert [(e.status.value, e.processed_count) for e in mine] == [
        ("Submitted", 0), ("In Progress", 0), ("Partially Completed", 2),
    ]  # fmt: skip
    done = mine[-1].to_json()
    assert done["data"] == {
        "jobStatusQueryKey": small.key,
        "batchId": small.batch_id,
        "status": "Partially Completed",
        "recordCount": 2,
        "processedCount": 2,
        "failedCount": 1,
    }
    assert str(done["id"]).startswith("evt_")
    assert done["sequence"] == 3

    log = log_of(runtime, other.org_id)
    assert [e.sequence for e in log] == list(range(1, len(log) + 1))
    assert [e.type for e in log_of(runtime, other.org_id, key=large.key)] == [
        SUBMITTED, STARTED, PROGRESS, PROGRESS, COMPLETED,
    ]  # fmt: skip
    progress = [e.processed_count for e in log_of(runtime, other.org_id, key=large.key)]
    assert progress == [0, 0, 3, 6, 7]
    # A progress event carries the time given to `record`, to the microsecond.
    chunks = [e for e in log_of(runtime, other.org_id, key=large.key) if e.type is PROGRESS]
    assert {e.created_at for e in chunks} == {runtime.clock()}
    assert [e.type for e in log_of(runtime, other.org_id, key=theirs.key)] == [SUBMITTED, STARTED, COMPLETED]


def test_a_rolled_back_transition_leaves_no_event_and_commits_tell_the_observers(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    told: list[Mapping[int, int]] = []
    runtime.uow.event_observers.append(lambda recorded: told.append(dict(recorded)))
    accepted = submit([record("A-1")])
    assert told == [{caller.org_id: 1}]

    def rolled_back() -> None:
        with runtime.uow.write() as conn:
            events.record(
                conn, EventType.PROGRESS, [int(accepted.batch_id)], org_id=caller.org_id, now=runtime.clock()
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert told == [{caller.org_id: 1}]
    assert [e.type for e in log_of(runtime, caller.org_id)] == [SUBMITTED]
    # The next transaction on the same pooled connection starts with nothing recorded.
    runtime.new_worker().run_until_idle()
    assert told[1:] == [{caller.org_id: 3}]
    assert [e.sequence for e in log_of(runtime, caller.org_id)] == [1, 2, 3]


def test_replay_pages_and_filters(runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock) -> None:
    keys = [submit([record(f"P-{i}")]).key for i in range(3)]
    runtime.new_worker().run_until_idle()
    with runtime.uow.read() as conn:
        first = events.page(conn, caller.org_id, after=0, limit=4)
        rest = events.page(conn, caller.org_id, after=first[-1].sequence, limit=100)
        completed = events.page(conn, caller.org_id, after=0, limit=100, kind=COMPLETED)
        one = events.page(conn, caller.org_id, after=0, limit=100, kind=COMPLETED, job_key=keys[1])
        last = events.last_sequence(conn, caller.org_id)
    assert [e.sequence for e in first + rest] == list(range(1, 10))
    assert [e.job_key for e in completed] == keys
    assert [(e.job_key, e.type) for e in one] == [(keys[1], COMPLETED)]
    assert last == 9
    assert Counter(e.type for e in first + rest) == {SUBMITTED: 3, STARTED: 3, COMPLETED: 3}


def test_the_bus_wakes_the_event_loop_only_for_organizations_something_waits_on(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    import asyncio

    async def scenario() -> list[Mapping[int, int]]:
        bus = runtime.events
        bus.start()
        announced: list[Mapping[int, int]] = []
        bus.announce = announced.append  # type: ignore[method-assign]
        await asyncio.to_thread(submit, [record("NOBODY-1")])
        await asyncio.sleep(0)
        assert announced == []
        subscription = bus.subscribe(caller.org_id)
        try:
            await asyncio.to_thread(submit, [record("SOMEBODY-1")])
            for _ in range(100):
                if announced:
                    break
                await asyncio.sleep(0.01)
        finally:
            subscription.release()
            bus.close()
        return announced

    announced = asyncio.run(scenario())
    # Once from this process's commit, and on PostgreSQL once more from its NOTIFY.
    assert announced
    assert all(list(news) == [caller.org_id] for news in announced)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_numbering_finds_each_events_job_by_its_id_however_many_jobs_there_are(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    # Planned from statistics, a join would read the whole jobs table for each commit once it holds
    # a few hundred rows (its JSON rows are estimated at a hundred): each event probes its job.
    for i in range(300):
        submit([record(f"PLAN-{i}")])
    compiled = events._NUMBER_INSERT_ANNOUNCE.compiled(runtime.engine.dialect)
    values = events._numbering(caller.org_id, [(COMPLETED, 300, datetime.now(UTC))])
    with runtime.uow.write() as conn:
        driver: Any = conn.connection.driver_connection
        driver.execute("ANALYZE jobs")
        explained = driver.execute("EXPLAIN " + compiled.sql, compiled.parameters(values))
        plan = "\n".join(row[0] for row in explained)
        conn.rollback()
    assert "Index Scan using pk_jobs on jobs" in plan
    assert "Seq Scan on jobs" not in plan
