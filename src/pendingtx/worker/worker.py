"""The worker loop: claim, process through the shared service, and survive anything a job does.

Every transition of a job is logged with its fields (`event` is job.claimed, job.finished,
job.released, job.lease_lost or job.given_up), so that a JSON log shows each job's whole story.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pendingtx.clock import Clock
from pendingtx.domain.patching import PatchLimits
from pendingtx.observability.logs import fields
from pendingtx.services import leases
from pendingtx.services.errors import Lease, LeaseLost, PoisonedPayload
from pendingtx.services.processing import process_job
from pendingtx.services.sandbox_triggers import Triggers
from pendingtx.services.small_jobs import UNDECODABLE, run_small_jobs
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.unit_of_work import UnitOfWork
from pendingtx.worker.liveness import is_dead_local, local_prefix, new_worker_id
from pendingtx.worker.wakeup import Wakeup

log = logging.getLogger("pendingtx.worker")

# At most this many small jobs are claimed and finished in one transaction (and at most a chunk of
# records in all): enough to make the commit cheap per job, few enough to keep the transaction short.
_BATCH_JOBS = 64


class StopRequested(Exception):
    """Raised between two chunks of a job when the worker has been asked to stop."""


class TurnOver(Exception):
    """Raised between two chunks of a job that has had its share while other organizations wait."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The worker's knobs, taken from Settings by the entrypoint."""

    lease_seconds: float
    poll_seconds: float
    chunk_size: int
    max_attempts: int
    patch_limits: PatchLimits
    # How long a job may keep the worker while other organizations' jobs wait, before it is handed
    # back at a chunk boundary to be resumed in its organization's next turn.
    fair_share_seconds: float = 0.25
    # A sandbox's trigger values (contract 7.6); None on a production server.
    triggers: Triggers | None = None


class Worker:
    """Claims and processes jobs one at a time; every step is safe to interrupt anywhere."""

    def __init__(
        self, uow: UnitOfWork, config: WorkerConfig, *, clock: Clock, worker_id: str | None = None
    ) -> None:
        self.uow = uow
        self.config = config
        self.clock = clock
        self.lease = Lease(worker_id or new_worker_id(), config.lease_seconds)
        # After a batch of small jobs failed: how many jobs to take one at a time before batching again.
        self._one_by_one = 0

    def rescue_dead_local_workers(self) -> int:
        """Expire the leases of dead workers of this host, so a restart resumes their jobs at once."""
        return leases.rescue(self.uow, prefix=local_prefix(), is_dead=is_dead_local, clock=self.clock)

    def claim(self) -> ClaimedJob | None:
        """Take the next job, if any, under a fresh lease."""
        return leases.claim_next(self.uow, self.lease, clock=self.clock)

    def run_once(self, stop: threading.Event | None = None) -> bool:
        """Process the next job, or a batch of small ones; False when there was nothing to do.

        Once `stop` is set, a job in progress is handed back at its next chunk boundary.
        """
        return self._step(stop) > 0

    def _step(self, stop: threading.Event | None) -> int:
        if self._one_by_one:
            self._one_by_one -= 1
        else:
            try:
                done = self._run_small_jobs()
            except Exception as exc:
                # The batch was handed back unclaimed. Its jobs go through the one-job path, which
                # counts attempts and isolates the job at fault.
                if leases.lost_a_race(self.uow, exc):
                    # It lost a race on externalIds with other workers each time it ran: no fault of
                    # its own, so no traceback; one at a time, each chunk retries on its own.
                    log.info("a batch of small jobs lost races with other workers; taking them one at a time")
                else:
                    log.warning("a batch of small jobs failed; taking them one at a time", exc_info=True)
                self._one_by_one = _BATCH_JOBS
            else:
                if done is not None:
                    return done
        job = self.claim()
        if job is None:
            self._one_by_one = 0
            return 0
        self._process(job, stop)
        return 1

    def _run_small_jobs(self) -> int | None:
        began = time.perf_counter()
        finished = run_small_jobs(
            self.uow,
            worker_id=self.lease.worker_id,
            clock=self.clock,
            lease_seconds=self.lease.seconds,
            max_jobs=_BATCH_JOBS,
            max_records=self.config.chunk_size,
            triggers=self.config.triggers,
        )
        if finished is None:
            return 0
        if not finished:
            return None  # the next job is a large one
        if log.isEnabledFor(logging.INFO):
            took = _ms_since(began)
            for done in finished:
                job = done.job
                log.info(
                    "job %s claimed with %s other(s) (attempt 1, from record 0 of %s)",
                    job.id,
                    len(finished) - 1,
                    job.record_count,
                    extra=self._fields(job, "job.claimed", processed=0),
                )
                if done.given_up is None:
                    log.info(
                        "job %s finished: %s",
                        job.id,
                        done.status.value,
                        extra=self._fields(job, "job.finished", status=done.status.value, duration_ms=took),
                    )
        for done in finished:
            if done.given_up is not None:
                log.error(
                    "job %s ended %s: %s",
                    done.job.id,
                    done.status.value,
                    done.given_up,
                    extra=self._fields(
                        done.job, "job.given_up", status=done.status.value, reason=done.given_up
                    ),
                )
        return len(finished)

    def _process(self, job: ClaimedJob, stop: threading.Event | None) -> None:
        began = time.perf_counter()
        log.info(
            "job %s claimed (attempt %s, from record %s of %s)",
            job.id,
            job.attempts,
            job.processed_count,
            job.record_count,
            extra=self._fields(job, "job.claimed", processed=job.processed_count),
        )
        if job.attempts > self.config.max_attempts:
            self._give_up(job, f"gave up after {job.attempts - 1} attempts that did not finish")
            return
        try:
            status = process_job(
                self.uow,
                job,
                lease=self.lease,
                chunk_size=self.config.chunk_size,
                clock=self.clock,
                checkpoint=self._checkpoint(job, stop),
                patch_limits=self.config.patch_limits,
                triggers=self.config.triggers,
            )
            log.info(
                "job %s finished: %s",
                job.id,
                status.value,
                extra=self._fields(job, "job.finished", status=status.value, duration_ms=_ms_since(began)),
            )
        except StopRequested:
            self._hand_back(job, "stopping")
        except TurnOver:
            self._hand_back(job, "fair share")
        except LeaseLost:
            log.warning(
                "job %s was taken over by another worker",
                job.id,
                extra=self._fields(job, "job.lease_lost", duration_ms=_ms_since(began)),
            )
        except PoisonedPayload as exc:
            log.error("job %s has an undecodable payload: %s", job.id, exc)
            self._give_up(job, UNDECODABLE)
        except Exception:
            log.exception("job %s failed on attempt %s", job.id, job.attempts)
            self._retry_or_give_up(job)

    def _checkpoint(self, job: ClaimedJob, stop: threading.Event | None) -> Callable[[], None]:
        """What runs before each chunk: stop when asked to, or give the turn to other organizations."""
        began = time.monotonic()
        share = self.config.fair_share_seconds
        chunks = 0

        def check() -> None:
            nonlocal chunks
            if stop is not None and stop.is_set():
                raise StopRequested()
            # Never before the first chunk: a turn always gets something done.
            chunks += 1
            if (
                chunks > 1
                and time.monotonic() - began >= share
                and leases.others_waiting(self.uow, job.org_id, clock=self.clock)
            ):
                raise TurnOver()

        return check

    def _fields(self, job: ClaimedJob, event: str, **more: Any) -> dict[str, Any]:
        return fields(
            event=event,
            job=job.id,
            org=job.org_id,
            kind=job.kind.value,
            attempt=job.attempts,
            records=job.record_count,
            worker=self.lease.worker_id,
            **more,
        )

    def run_until_idle(self) -> int:
        """Process jobs until none is waiting; returns how many were handled."""
        handled = 0
        while done := self._step(None):
            handled += done
        return handled

    def run(self, stop: threading.Event, wakeup: Wakeup) -> None:
        """Work until `stop` is set, sleeping between jobs until woken (or the poll fallback)."""
        with self.uow.keeping_connections():
            self.rescue_dead_local_workers()
            while not stop.is_set():
                try:
                    if self.run_once(stop):
                        continue
                except Exception:
                    log.exception("worker step failed; retrying after the poll interval")
                wakeup.wait(self.config.poll_seconds)

    def _hand_back(self, job: ClaimedJob, reason: str) -> None:
        """Release a job at a chunk boundary so that any worker may resume it at once, without counting
        an attempt (this worker is stopping, or the job's organization has had its turn)."""
        processed = leases.hand_back(self.uow, job, self.lease, clock=self.clock)
        if processed is None:
            log.warning(
                "job %s was taken over by another worker", job.id, extra=self._fields(job, "job.lease_lost")
            )
            return
        log.info(
            "job %s handed back at record %s of %s (%s)",
            job.id,
            processed,
            job.record_count,
            reason,
            extra=self._fields(job, "job.released", reason=reason, processed=processed),
        )

    def _retry_or_give_up(self, job: ClaimedJob) -> None:
        if job.attempts >= self.config.max_attempts:
            self._give_up(job, f"processing failed {job.attempts} times with an internal error")
            return
        backoff = timedelta(seconds=min(2**job.attempts, 60))
        if leases.retry_later(self.uow, job, self.lease, clock=self.clock, backoff=backoff):
            log.warning(
                "job %s released for a retry in %s s",
                job.id,
                int(backoff.total_seconds()),
                extra=self._fields(job, "job.released", reason="error", retry_in_s=backoff.total_seconds()),
            )

    def _give_up(self, job: ClaimedJob, reason: str) -> None:
        status, message = leases.give_up(self.uow, job, self.lease, clock=self.clock, reason=reason)
        log.error(
            "job %s ended %s: %s",
            job.id,
            status.value,
            message,
            extra=self._fields(job, "job.given_up", status=status.value, reason=reason),
        )


class WorkerThread:
    """Runs a Worker in a background thread of the server process (the embedded default)."""

    def __init__(self, worker: Worker, wakeup: Wakeup) -> None:
        self.worker = worker
        self.wakeup = wakeup
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pendingtx-worker", daemon=True)

    def _run(self) -> None:
        self.worker.run(self._stop, self.wakeup)

    def start(self) -> None:
        """Start working in the background."""
        self._thread.start()

    def request_stop(self) -> None:
        """Stop claiming, and hand back a job in progress at its next chunk boundary; returns at once."""
        self._stop.set()
        self.wakeup.notify()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the loop to end."""
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the loop is still running."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop (handing back a job in progress) and wait for it."""
        self.request_stop()
        self.join(timeout)


def _ms_since(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 3)
