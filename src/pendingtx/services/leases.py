"""A worker's hold on jobs: claiming the next one, handing one back, retrying later, giving up, and
taking over the jobs of workers found dead. Processing itself is services.processing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa

from pendingtx.clock import Clock
from pendingtx.domain.jobs import JobStatus, abandoned
from pendingtx.services.errors import Lease
from pendingtx.storage import claim, holds
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.unit_of_work import UnitOfWork


def claim_next(uow: UnitOfWork, lease: Lease, *, clock: Clock) -> ClaimedJob | None:
    """The next job in turn, held under a fresh lease; None when no job is claimable."""
    now = clock()
    with uow.write(redoable=True) as conn:
        return claim.claim_next(
            conn, worker_id=lease.worker_id, now=now, lease_until=now + timedelta(seconds=lease.seconds)
        )


def others_waiting(uow: UnitOfWork, org_id: int, *, clock: Clock) -> bool:
    """Whether another organization than `org_id` has a job waiting for a worker."""
    with uow.read() as conn:
        return claim.others_waiting(conn, org_id, now=clock())


def hand_back(uow: UnitOfWork, job: ClaimedJob, lease: Lease, *, clock: Clock) -> int | None:
    """Release a job at a chunk boundary for any worker to resume at once, its attempt given back;
    returns how many records it has processed, or None when its lease was lost already."""
    now = clock()
    with uow.write(redoable=True) as conn:
        released = holds.release(
            conn, job_id=job.id, worker_id=lease.worker_id, now=now, retry_at=now, failed=False
        )
        return holds.progress_of(conn, job.id)[0] if released else None


def retry_later(uow: UnitOfWork, job: ClaimedJob, lease: Lease, *, clock: Clock, backoff: timedelta) -> bool:
    """Release a job that failed with an error, for a retry after `backoff`; False if the lease was lost."""
    now = clock()
    with uow.write(redoable=True) as conn:
        return holds.release(conn, job_id=job.id, worker_id=lease.worker_id, now=now, retry_at=now + backoff)


def give_up(
    uow: UnitOfWork, job: ClaimedJob, lease: Lease, *, clock: Clock, reason: str
) -> tuple[JobStatus, str]:
    """End a job that cannot be processed: the records applied so far stay, the message says why."""
    with uow.write(redoable=True) as conn:
        processed, created = holds.progress_of(conn, job.id)
        status, message = abandoned(
            record_count=job.record_count, processed=processed, created=created, reason=reason
        )
        holds.finish(
            conn,
            job_id=job.id,
            org_id=job.org_id,
            worker_id=lease.worker_id,
            status=status,
            message=message,
            now=clock(),
        )
    return status, message


def rescue(uow: UnitOfWork, *, prefix: str, is_dead: Callable[[str], bool], clock: Clock) -> int:
    """Expire the leases of dead workers whose ids start with `prefix`, so their jobs are taken over
    at once; returns how many jobs were freed."""
    with uow.read() as conn:
        dead = [worker for worker in holds.held_by_prefix(conn, prefix) if is_dead(worker)]
    if not dead:
        return 0
    with uow.write(redoable=True) as conn:
        return holds.expire_leases(conn, dead, now=clock())


def lost_a_race(uow: UnitOfWork, exc: BaseException) -> bool:
    """Whether `exc` ended a transaction that lost a race with another worker's (no fault of its own)."""
    return isinstance(exc, sa.exc.DBAPIError) and uow.rules.retry_may_succeed(exc)
