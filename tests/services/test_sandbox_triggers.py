"""Sandbox trigger values in the worker (contract 7.6): SBX-REJECT-, SBX-SLOW-, SBX-CRASH-, on both
the small-jobs path and the one-job path, on both databases."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from pendingtx.bootstrap import Runtime
from pendingtx.domain.jobs import JobStatus
from pendingtx.services.authentication import Caller
from pendingtx.services.sandbox_triggers import REJECTED_REASON, Triggers
from pendingtx.storage.tables import rate_counters
from pendingtx.worker.worker import Worker
from tests.services.conftest import Submit, job_view
from tests.support import FakeClock, record


def sandbox_worker(runtime: Runtime, triggers: Triggers) -> Worker:
    worker = runtime.new_worker()
    worker.config = dataclasses.replace(worker.config, triggers=triggers)
    return worker


def batch(size: int, *special: str) -> list[dict[str, object]]:
    """`size` records, the first ones with the given externalIds."""
    ids = [*special, *(f"PLAIN-{i}" for i in range(size - len(special)))]
    return [record(i) for i in ids]


# 2 records take the small-jobs path; 60 (more than a chunk of 50) the one-job path.
@pytest.mark.parametrize("size", [2, 60])
def test_a_reject_trigger_rejects_its_record_only(
    runtime: Runtime, caller: Caller, submit: Submit, size: int
) -> None:
    key = submit(batch(size, "SBX-REJECT-1")).key
    assert sandbox_worker(runtime, Triggers(sleep=lambda _: None)).run_until_idle() == 1
    view = job_view(runtime, caller, key)
    assert view.job.status is JobStatus.PARTIALLY_COMPLETED
    assert [(p.index, p.external_id, p.field, p.reason) for p in view.problems] == [
        (0, "SBX-REJECT-1", "externalId", REJECTED_REASON)
    ]


def test_without_triggers_the_values_are_plain_records(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    key = submit(batch(3, "SBX-REJECT-1", "SBX-CRASH-1", "SBX-SLOW-1")).key
    assert runtime.new_worker().run_until_idle() == 1
    assert job_view(runtime, caller, key).job.status is JobStatus.COMPLETED


@pytest.mark.parametrize("size", [2, 60])
def test_a_slow_trigger_sleeps_in_progress_without_holding_a_write(
    runtime: Runtime, caller: Caller, submit: Submit, size: int
) -> None:
    key = submit(batch(size, "SBX-SLOW-1")).key
    seen: list[tuple[float, JobStatus]] = []

    def sleep(seconds: float) -> None:
        # Another writer gets in at once: the worker holds no write transaction while it sleeps.
        with runtime.uow.write() as conn:
            conn.execute(sa.delete(rate_counters).where(rate_counters.c.key == "nothing"))
        seen.append((seconds, job_view(runtime, caller, key).job.status))

    assert sandbox_worker(runtime, Triggers(sleep=sleep)).run_until_idle() == 1
    assert seen == [(2.0, JobStatus.IN_PROGRESS)]
    assert job_view(runtime, caller, key).job.status is JobStatus.COMPLETED


@pytest.mark.parametrize("size", [2, 60])
def test_a_crash_trigger_fails_the_job_after_its_retries(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock, size: int
) -> None:
    key = submit(batch(size, "SBX-CRASH-1")).key
    worker = sandbox_worker(runtime, Triggers(sleep=lambda _: None))
    for _ in range(10):
        worker.run_until_idle()
        if job_view(runtime, caller, key).job.status.terminal:
            break
        clock.advance(120)  # past the retry's backoff
    view = job_view(runtime, caller, key)
    assert view.job.status is JobStatus.FAILED
    assert view.job.created_count == 0
    assert f"failed {runtime.settings.worker_max_attempts} times" in view.message
