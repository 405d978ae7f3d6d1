"""A worker's holds on jobs: claims in the audit, leases, progress and verdicts, each written only
while the lease is held (the writer's worker id is checked in every statement)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.events import EventType
from pendingtx.domain.jobs import JobStatus
from pendingtx.storage import events
from pendingtx.storage.driver import Statement, dialect_for, parameters_for, run, run_many
from pendingtx.storage.tables import job_claims, jobs


@dataclass(frozen=True, slots=True)
class Verdict:
    """A job's terminal status and message, decided by the worker."""

    status: JobStatus
    message: str


@dataclass(frozen=True, slots=True)
class Completion:
    """The counts and verdict of a job processed whole in one transaction."""

    job_id: int
    org_id: int
    processed: int
    created: int
    failed: int
    verdict: Verdict


def _utc(name: str, column: sa.Column[Any]) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=column.type)


# Named apart from the columns: a column set in .values() gets an implicit parameter of its own name.
_HELD = sa.and_(
    jobs.c.id == sa.bindparam("held_job"),
    jobs.c.worker_id == sa.bindparam("held_by"),
    jobs.c.status == JobStatus.IN_PROGRESS.value,
)
_OPEN_CLAIM = sa.and_(
    job_claims.c.job_id == sa.bindparam("held_job"),
    job_claims.c.worker_id == sa.bindparam("held_by"),
    job_claims.c.ended_at.is_(None),
)
_NOW = _utc("now", jobs.c.completed_at)
# A job the client cancelled takes no more records: its worker ends it instead
# (storage.cancellation.stop_if_cancelled), in the transaction that would have applied them.
_NOT_CANCELLED = jobs.c.cancel_requested_at.is_(None)
_UNCHANGED = sa.and_(jobs.c.processed_count == sa.bindparam("from_processed"), _NOT_CANCELLED)
_PROGRESS = {
    "processed_count": sa.bindparam("processed"),
    "created_count": jobs.c.created_count + sa.bindparam("created"),
    "failed_count": jobs.c.failed_count + sa.bindparam("failed"),
}
_VERDICT = {
    "status": sa.bindparam("status"),
    "message": sa.bindparam("message"),
    "completed_at": _NOW,
    "worker_id": None,
    "lease_until": None,
}
_ADVANCE = Statement(
    jobs.update().where(_HELD, _UNCHANGED).values(**_PROGRESS, lease_until=_utc("lease", jobs.c.lease_until))
)
_COMPLETE = Statement(jobs.update().where(_HELD, _UNCHANGED).values(**_PROGRESS, **_VERDICT))
_FINISH = Statement(jobs.update().where(_HELD).values(**_VERDICT))
_RELEASE = Statement(
    jobs.update().where(_HELD).values(worker_id=None, lease_until=_utc("retry_at", jobs.c.lease_until))
)
_HAND_BACK = Statement(
    jobs.update()
    .where(_HELD)
    .values(worker_id=None, lease_until=_utc("retry_at", jobs.c.lease_until), attempts=jobs.c.attempts - 1)
)
_RENEW_CLAIM = Statement(
    job_claims.update().where(_OPEN_CLAIM).values(lease_until=_utc("lease", job_claims.c.lease_until))
)
_END_CLAIM = Statement(
    job_claims.update().where(_OPEN_CLAIM).values(ended_at=_utc("now", job_claims.c.ended_at))
)


def advance(
    conn: sa.Connection,
    *,
    job_id: int,
    org_id: int,
    worker_id: str,
    from_processed: int,
    processed: int,
    created: int,
    failed: int,
    now: datetime,
    lease_until: datetime,
    verdict: Verdict | None = None,
) -> bool:
    """Move a held job's progress forward and renew its lease, or end it with `verdict`; False if
    the lease was lost.

    Run first in the chunk's transaction: the condition on `processed_count` makes a second holder
    of a stale lease fail here, before it writes anything. A job the client cancelled fails here too
    (see storage.cancellation.stop_if_cancelled).
    """
    held = {"held_job": job_id, "held_by": worker_id}
    progress = {
        "from_processed": from_processed,
        "processed": processed,
        "created": created,
        "failed": failed,
    }
    if verdict is None:
        if run(conn, _ADVANCE, {**held, **progress, "lease": lease_until}).rowcount != 1:
            return False
        events.record(conn, EventType.PROGRESS, [job_id], org_id=org_id, now=now)
        return run(conn, _RENEW_CLAIM, {**held, "lease": lease_until}).rowcount == 1
    ended = {"status": verdict.status.value, "message": verdict.message, "now": now}
    if run(conn, _COMPLETE, {**held, **progress, **ended}).rowcount != 1:
        return False
    events.record(conn, EventType.COMPLETED, [job_id], org_id=org_id, now=now)
    return run(conn, _END_CLAIM, {**held, "now": now}).rowcount == 1


def finish(
    conn: sa.Connection,
    *,
    job_id: int,
    org_id: int,
    worker_id: str,
    status: JobStatus,
    message: str,
    now: datetime,
) -> bool:
    """Give a held job its terminal status; False if the lease was lost."""
    held = {"held_job": job_id, "held_by": worker_id}
    if run(conn, _FINISH, {**held, "status": status.value, "message": message, "now": now}).rowcount != 1:
        return False
    events.record(conn, EventType.COMPLETED, [job_id], org_id=org_id, now=now)
    return run(conn, _END_CLAIM, {**held, "now": now}).rowcount == 1


def release(
    conn: sa.Connection,
    *,
    job_id: int,
    worker_id: str,
    now: datetime,
    retry_at: datetime,
    failed: bool = True,
) -> bool:
    """Give up a held job so that any worker may retry it from `retry_at` on.

    A job released without having `failed` (its worker is stopping, or its organization's turn is
    over) gets its attempt back: restarts of the service must not use up a long job's attempts.
    """
    held = {"held_job": job_id, "held_by": worker_id}
    if run(conn, _RELEASE if failed else _HAND_BACK, {**held, "retry_at": retry_at}).rowcount != 1:
        return False
    return run(conn, _END_CLAIM, {**held, "now": now}).rowcount == 1


_EXPIRE_LEASES = Statement(
    jobs.update()
    .where(jobs.c.worker_id == sa.bindparam("held_by"), jobs.c.status == JobStatus.IN_PROGRESS.value)
    .values(lease_until=_utc("now", jobs.c.lease_until))
)
_END_CLAIMS_OF = Statement(
    job_claims.update()
    .where(job_claims.c.worker_id == sa.bindparam("held_by"), job_claims.c.ended_at.is_(None))
    .values(ended_at=_utc("now", job_claims.c.ended_at))
)


def expire_leases(conn: sa.Connection, worker_ids: Sequence[str], *, now: datetime) -> int:
    """End the leases of workers known to be dead, so their jobs are taken over at once."""
    held = [{"held_by": worker_id, "now": now} for worker_id in worker_ids]
    expired = run_many(conn, _EXPIRE_LEASES, held)
    # Their claims end now too, so the audit shows the takeover starting after them.
    run_many(conn, _END_CLAIMS_OF, held)
    return expired


_HOLDERS = Statement(
    sa.select(jobs.c.worker_id)
    .where(jobs.c.status == JobStatus.IN_PROGRESS.value, jobs.c.worker_id.startswith(sa.bindparam("prefix")))
    .distinct()
)


def held_by_prefix(conn: sa.Connection, prefix: str) -> list[str]:
    """Distinct worker ids, starting with `prefix`, that hold jobs in progress."""
    return [row.worker_id for row in run(conn, _HOLDERS, {"prefix": prefix}).all()]


_PROGRESS_OF = Statement(
    sa.select(jobs.c.processed_count, jobs.c.created_count).where(jobs.c.id == sa.bindparam("job_id"))
)


def progress_of(conn: sa.Connection, job_id: int) -> tuple[int, int]:
    """A job's committed (processed, created) counts."""
    row = run(conn, _PROGRESS_OF, {"job_id": job_id}).one()
    return int(row.processed_count), int(row.created_count)


# --- batches of small jobs ----------------------------------------------------------------------------

_CLAIM_WAITING = Statement(
    jobs.update()
    .where(jobs.c.id == sa.bindparam("held_job"), jobs.c.status == JobStatus.SUBMITTED.value)
    .values(
        status=JobStatus.IN_PROGRESS.value,
        worker_id=sa.bindparam("held_by"),
        lease_until=_utc("lease", jobs.c.lease_until),
        attempts=jobs.c.attempts + 1,
        started_at=sa.func.coalesce(jobs.c.started_at, _NOW),
    )
)
# Inline: without it PostgreSQL's compilation asks for the new ids back, which nobody reads.
_ADD_CLAIM = Statement(
    job_claims.insert()
    .inline()
    .values(parameters_for(job_claims, "job_id", "worker_id", "attempt", "claimed_at", "lease_until"))
)


def open_claims(
    conn: sa.Connection,
    claimed: Sequence[tuple[int, int]],
    *,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
) -> None:
    """Record in the audit who claimed these (job id, attempt)s, when, and until when."""
    rows = [
        {
            "job_id": job_id,
            "worker_id": worker_id,
            "attempt": attempt,
            "claimed_at": now,
            "lease_until": lease_until,
        }
        for job_id, attempt in claimed
    ]
    dialect_for(conn).write_at_commit(conn, _ADD_CLAIM, rows)


_COMPLETE_HELD = Statement(
    jobs.update()
    .where(_HELD, _NOT_CANCELLED)
    .values(
        status=sa.bindparam("verdict"),
        message=sa.bindparam("text"),
        processed_count=sa.bindparam("processed"),
        created_count=sa.bindparam("created"),
        failed_count=sa.bindparam("failed"),
        completed_at=_NOW,
        worker_id=None,
        lease_until=None,
    )
)
_UNCLAIM = Statement(
    jobs.update()
    .where(_HELD)
    .values(
        status=JobStatus.SUBMITTED.value,
        worker_id=None,
        lease_until=None,
        attempts=jobs.c.attempts - 1,
        started_at=None,
    )
)
_DROP_CLAIMS = Statement(job_claims.delete().where(_OPEN_CLAIM))


def claim_waiting(
    conn: sa.Connection, job_ids: Sequence[int], *, worker_id: str, now: datetime, lease_until: datetime
) -> None:
    """Claim waiting jobs (locked by this transaction) under one lease, counting an attempt for each."""
    held = [{"held_job": i, "held_by": worker_id, "now": now, "lease": lease_until} for i in job_ids]
    # The rows are locked by this transaction already: the claim cannot miss, so it goes with the commit.
    dialect_for(conn).write_at_commit(conn, _CLAIM_WAITING, held)
    open_claims(conn, [(i, 1) for i in job_ids], worker_id=worker_id, now=now, lease_until=lease_until)


def complete_held(
    conn: sa.Connection, completions: Sequence[Completion], *, worker_id: str, now: datetime
) -> bool:
    """Give held jobs their counts and terminal status; False if any lease was lost or any job was
    cancelled meanwhile (roll back then)."""
    ended = [
        {
            "held_job": c.job_id,
            "held_by": worker_id,
            "verdict": c.verdict.status.value,
            "text": c.verdict.message,
            "processed": c.processed,
            "created": c.created,
            "failed": c.failed,
            "now": now,
        }
        for c in completions
    ]
    if run_many(conn, _COMPLETE_HELD, ended) != len(completions):
        return False
    # Claimed in an earlier transaction, small jobs start and end in the log together, as they commit:
    # a batch handed back before this point leaves no trace there.
    for c in completions:
        events.record(conn, EventType.STARTED, [c.job_id], org_id=c.org_id, now=now)
        events.record(conn, EventType.COMPLETED, [c.job_id], org_id=c.org_id, now=now)
    ended_claims = [{"held_job": c.job_id, "held_by": worker_id, "now": now} for c in completions]
    dialect_for(conn).write_at_commit(conn, _END_CLAIM, ended_claims)
    return True


def unclaim(conn: sa.Connection, job_ids: Sequence[int], *, worker_id: str) -> None:
    """Give back held jobs nothing was done for, waiting again as if never claimed: the attempt and
    the claim's audit row are undone."""
    held = [{"held_job": i, "held_by": worker_id} for i in job_ids]
    run_many(conn, _UNCLAIM, held)
    run_many(conn, _DROP_CLAIMS, held)
