"""The worker loop: woken by submissions, rescuing dead local workers, bounded attempts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

from pendingtx.bootstrap import Runtime
from pendingtx.services.authentication import Caller
from pendingtx.storage import holds
from pendingtx.worker.liveness import is_dead_local, local_prefix, new_worker_id
from pendingtx.worker.wakeup import Wakeup
from pendingtx.worker.worker import WorkerThread
from tests.services.conftest import Submit, job_view
from tests.support import FakeClock, StopAfter, record


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_submission_wakes_the_worker_without_waiting_for_a_poll(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    # With an hour-long poll interval, only the wake-up can get the job done in time.
    waiting = threading.Event()

    class ObservedWakeup(Wakeup):
        def wait(self, timeout: float) -> bool:
            waiting.set()
            return super().wait(timeout)

    wakeup = ObservedWakeup()
    runtime.wakeup = wakeup  # the submit fixture notifies through this runtime
    idle = Runtime(
        settings=runtime.settings.replace(worker_poll_seconds=3600),
        engine=runtime.engine,
        clock=runtime.clock,
        wakeup=wakeup,
    )
    thread = WorkerThread(idle.new_worker(), wakeup)
    thread.start()
    try:
        assert waiting.wait(10)
        accepted = submit([record("W-1")])
        assert wait_until(lambda: job_view(runtime, caller, accepted.key).terminal)
    finally:
        thread.stop(timeout=10)


def test_worker_ids_name_this_host_and_process() -> None:
    worker_id = new_worker_id()
    assert worker_id.startswith(local_prefix())
    assert not is_dead_local(worker_id)
    assert is_dead_local(f"{local_prefix()}{dead_pid()}:abcd")
    assert not is_dead_local("elsewhere:1:abcd") or local_prefix() == "elsewhere:"


def test_jobs_of_a_dead_local_worker_are_taken_over_at_once(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    accepted = submit([record("R-1")])
    ghost = runtime.new_worker(f"{local_prefix()}{dead_pid()}:ghost")
    assert ghost.claim() is not None
    survivor = runtime.new_worker()
    assert survivor.run_once() is False  # the lease is still running
    assert survivor.rescue_dead_local_workers() == 1
    assert survivor.run_once()
    assert job_view(runtime, caller, accepted.key).job.status.value == "Completed"


def test_a_job_whose_workers_keep_dying_ends_failed(
    runtime: Runtime, caller: Caller, submit: Submit, clock: FakeClock
) -> None:
    accepted = submit([record("K-1")])
    for attempt in range(runtime.settings.worker_max_attempts):
        assert runtime.new_worker(f"host:{attempt}:dies").claim() is not None
        clock.advance(runtime.settings.worker_lease_seconds + 1)
    assert runtime.new_worker().run_once()
    view = job_view(runtime, caller, accepted.key)
    assert view.job.status.value == "Failed"
    assert f"gave up after {runtime.settings.worker_max_attempts} attempts" in view.message
    with runtime.uow.read() as conn:
        assert holds.progress_of(conn, view.job.id) == (0, 0)


def test_a_job_handed_back_by_stopping_workers_keeps_its_attempts(
    runtime: Runtime, caller: Caller, submit: Submit
) -> None:
    # Each restart of the service hands the job back at a chunk boundary: that is no failed attempt.
    chunk = runtime.settings.worker_chunk_size
    restarts = runtime.settings.worker_max_attempts + 2
    accepted = submit([record(f"R-{i}") for i in range(chunk * (restarts + 1))])
    for _ in range(restarts):
        assert runtime.new_worker().run_once(StopAfter(1))
    assert runtime.new_worker().run_once()
    view = job_view(runtime, caller, accepted.key)
    assert view.job.status.value == "Completed", view.message
    assert view.job.created_count == chunk * (restarts + 1)
