"""Queries for jobs and their recorded problems; every lease-holding write names its worker."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.jobs import JobKind, JobStatus, RecordProblem, storable
from pendingtx.storage.direct import DirectStatement, run, run_many
from pendingtx.storage.tables import job_claims, job_problems, jobs


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What the status endpoint shows of a job."""

    id: int
    key: str
    kind: JobKind
    status: JobStatus
    record_count: int
    processed_count: int
    created_count: int
    failed_count: int
    message: str | None
    submitted_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker now holds the lease on, with where to resume."""

    id: int
    org_id: int
    kind: JobKind
    payload: bytes
    record_count: int
    processed_count: int
    created_count: int
    failed_count: int
    attempts: int
    target: str | None


# Run on the driver: SQLAlchemy's per-execution work cost more than the insert on the submit path.
_INSERT_JOB = DirectStatement(
    lambda _: (
        jobs.insert()
        .values(
            key=sa.bindparam("key"),
            org_id=sa.bindparam("org_id"),
            app_id=sa.bindparam("app_id"),
            kind=sa.bindparam("kind"),
            status=JobStatus.SUBMITTED.value,
            payload=sa.bindparam("payload"),
            record_count=sa.bindparam("record_count"),
            submitted_at=sa.bindparam("submitted_at", type_=jobs.c.submitted_at.type),
            target=sa.bindparam("target"),
            idempotency_key=sa.bindparam("idempotency_key"),
            request_digest=sa.bindparam("request_digest"),
        )
        .returning(jobs.c.id)
    )
)


def insert_job(
    conn: sa.Connection,
    *,
    key: str,
    org_id: int,
    app_id: int,
    kind: JobKind,
    payload: bytes,
    record_count: int,
    now: datetime,
    target: str | None = None,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
) -> int:
    """Store a submitted job with its whole payload; returns its id, the batchId."""
    cursor = run(
        conn,
        _INSERT_JOB,
        {
            "key": key,
            "org_id": org_id,
            "app_id": app_id,
            "kind": kind.value,
            "payload": payload,
            "record_count": record_count,
            "submitted_at": now,
            "target": target,
            "idempotency_key": idempotency_key,
            "request_digest": request_digest,
        },
    )
    return int(cursor.fetchone()[0])


def reserve_idempotency_key(conn: sa.Connection, *, app_id: int, key: str) -> bool:
    """Whether this transaction may store a job under the key: False, at once, while another one
    (of any process) is storing a job under it.

    On PostgreSQL a transaction-scoped advisory lock, so that the second of two concurrent requests
    neither waits on the unique index for the first to commit nor stores a second job. A SQLite
    write transaction excludes every other writer already.
    """
    if conn.dialect.name != "postgresql":
        return True
    # 64 bits of the (application, key) pair: a collision costs a spurious, retryable 409.
    digest = hashlib.blake2b(f"{app_id}\n{key}".encode(), digest_size=8, person=b"idempotency-key")
    lock = sa.func.pg_try_advisory_xact_lock(int.from_bytes(digest.digest(), signed=True))
    return bool(conn.execute(sa.select(lock)).scalar_one())


def find_by_idempotency_key(conn: sa.Connection, *, app_id: int, key: str) -> tuple[int, str, str] | None:
    """The (id, key, request digest) of the job an application made with this Idempotency-Key."""
    row = conn.execute(
        sa.select(jobs.c.id, jobs.c.key, jobs.c.request_digest).where(
            jobs.c.app_id == app_id, jobs.c.idempotency_key == key
        )
    ).first()
    return (int(row[0]), str(row[1]), str(row[2])) if row is not None else None


# What the status endpoint shows of a job, in the order `job_record` reads it.
JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.key,
    jobs.c.kind,
    jobs.c.status,
    jobs.c.record_count,
    jobs.c.processed_count,
    jobs.c.created_count,
    jobs.c.failed_count,
    jobs.c.message,
    jobs.c.submitted_at,
    jobs.c.completed_at,
)
_FIND_JOB = sa.select(*JOB_COLUMNS).where(
    jobs.c.key == sa.bindparam("key"), jobs.c.org_id == sa.bindparam("org_id")
)


def job_record(row: Sequence[Any], utc: Callable[[Any], datetime]) -> JobRecord:
    """A row of JOB_COLUMNS as a JobRecord; `utc` turns the stored timestamps into aware UTC ones."""
    return JobRecord(
        id=row[0],
        key=row[1],
        kind=JobKind(row[2]),
        status=JobStatus(row[3]),
        record_count=row[4],
        processed_count=row[5],
        created_count=row[6],
        failed_count=row[7],
        message=row[8],
        submitted_at=utc(row[9]),
        completed_at=utc(row[10]) if row[10] is not None else None,
    )


def find_job(conn: sa.Connection, *, key: str, org_id: int) -> JobRecord | None:
    """The organization's job with this key; another organization's job is simply not found."""
    row = conn.execute(_FIND_JOB, {"key": key, "org_id": org_id}).first()
    # SQLAlchemy's column types already hand back aware UTC datetimes.
    return job_record(row, lambda moment: moment) if row is not None else None


def problems_of(conn: sa.Connection, job_id: int, limit: int | None = None) -> list[RecordProblem]:
    """The recorded problems of a job in record order: every one, or the first `limit`."""
    rows = conn.execute(
        sa.select(
            job_problems.c.record_index,
            job_problems.c.external_id,
            job_problems.c.field,
            job_problems.c.reason,
        )
        .where(job_problems.c.job_id == job_id)
        .order_by(job_problems.c.record_index, job_problems.c.id)
        .limit(limit)
    )
    return [RecordProblem(index=r[0], external_id=r[1], field=r[2], reason=r[3]) for r in rows]


def insert_problems(conn: sa.Connection, job_id: int, problems: Sequence[RecordProblem]) -> None:
    """Record why records were rejected."""
    insert_problems_of(conn, [(job_id, problems)])


def insert_problems_of(conn: sa.Connection, by_job: Sequence[tuple[int, Sequence[RecordProblem]]]) -> None:
    """Record why records of several jobs were rejected, in one statement.

    Every text is made storable first: PostgreSQL refuses NUL in text, and a member name may hold one.
    """
    rows = [
        {
            "job_id": job_id,
            "record_index": p.index,
            "external_id": None if p.external_id is None else storable(p.external_id),
            "field": storable(p.field),
            "reason": storable(p.reason),
        }
        for job_id, problems in by_job
        for p in problems
    ]
    if rows:
        conn.execute(job_problems.insert(), rows)


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


@cache
def _statements() -> dict[str, sa.Update]:
    # Built once: constructing a statement costs more than running it on the hot worker path.
    progress = {
        "processed_count": sa.bindparam("processed"),
        "created_count": jobs.c.created_count + sa.bindparam("created"),
        "failed_count": jobs.c.failed_count + sa.bindparam("failed"),
    }
    verdict = {
        "status": sa.bindparam("status"),
        "message": sa.bindparam("message"),
        "completed_at": sa.bindparam("now", type_=jobs.c.completed_at.type),
        "worker_id": None,
        "lease_until": None,
    }
    unchanged = jobs.c.processed_count == sa.bindparam("from_processed")
    claims = job_claims.update().where(_OPEN_CLAIM)
    return {
        "advance": jobs.update()
        .where(_HELD, unchanged)
        .values(**progress, lease_until=sa.bindparam("lease")),
        "complete": jobs.update().where(_HELD, unchanged).values(**progress, **verdict),
        "finish": jobs.update().where(_HELD).values(**verdict),
        "release": jobs.update().where(_HELD).values(worker_id=None, lease_until=sa.bindparam("retry_at")),
        "hand_back": jobs.update()
        .where(_HELD)
        .values(worker_id=None, lease_until=sa.bindparam("retry_at"), attempts=jobs.c.attempts - 1),
        "renew_claim": claims.values(lease_until=sa.bindparam("lease")),
        "end_claim": claims.values(ended_at=sa.bindparam("now", type_=job_claims.c.ended_at.type)),
    }


def _run(conn: sa.Connection, name: str, **params: object) -> bool:
    return conn.execute(_statements()[name], params).rowcount == 1


@dataclass(frozen=True, slots=True)
class Verdict:
    """A job's terminal status and message, decided by the worker."""

    status: JobStatus
    message: str


def advance(
    conn: sa.Connection,
    *,
    job_id: int,
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
    of a stale lease fail here, before it writes anything.
    """
    held = {"held_job": job_id, "held_by": worker_id}
    progress = {
        "from_processed": from_processed,
        "processed": processed,
        "created": created,
        "failed": failed,
    }
    if verdict is None:
        if not _run(conn, "advance", **held, **progress, lease=lease_until):
            return False
        return _run(conn, "renew_claim", **held, lease=lease_until)
    if not _run(
        conn, "complete", **held, **progress, status=verdict.status.value, message=verdict.message, now=now
    ):
        return False
    return _run(conn, "end_claim", **held, now=now)


def finish(
    conn: sa.Connection,
    *,
    job_id: int,
    worker_id: str,
    status: JobStatus,
    message: str,
    now: datetime,
) -> bool:
    """Give a held job its terminal status; False if the lease was lost."""
    held = {"held_job": job_id, "held_by": worker_id}
    if not _run(conn, "finish", **held, status=status.value, message=message, now=now):
        return False
    return _run(conn, "end_claim", **held, now=now)


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

    A job released without having `failed` (its worker is stopping) gets its attempt back: restarts
    of the service must not use up a long job's attempts.
    """
    held = {"held_job": job_id, "held_by": worker_id}
    if not _run(conn, "release" if failed else "hand_back", **held, retry_at=retry_at):
        return False
    return _run(conn, "end_claim", **held, now=now)


def expire_leases(conn: sa.Connection, worker_ids: Sequence[str], *, now: datetime) -> int:
    """End the leases of workers known to be dead, so their jobs are taken over at once."""
    if not worker_ids:
        return 0
    result = conn.execute(
        jobs.update()
        .where(jobs.c.worker_id.in_(list(worker_ids)), jobs.c.status == JobStatus.IN_PROGRESS.value)
        .values(lease_until=now)
    )
    # Their claims end now too, so the audit shows the takeover starting after them.
    conn.execute(
        job_claims.update()
        .where(job_claims.c.worker_id.in_(list(worker_ids)), job_claims.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(result.rowcount)


def held_by_prefix(conn: sa.Connection, prefix: str) -> list[str]:
    """Distinct worker ids, starting with `prefix`, that hold jobs in progress."""
    rows = conn.execute(
        sa.select(jobs.c.worker_id)
        .where(jobs.c.status == JobStatus.IN_PROGRESS.value, jobs.c.worker_id.startswith(prefix))
        .distinct()
    )
    return [r[0] for r in rows]


def progress_of(conn: sa.Connection, job_id: int) -> tuple[int, int]:
    """A job's committed (processed, created) counts."""
    row = conn.execute(
        sa.select(jobs.c.processed_count, jobs.c.created_count).where(jobs.c.id == job_id)
    ).one()
    return int(row[0]), int(row[1])


@dataclass(frozen=True, slots=True)
class Completion:
    """The counts and verdict of a job processed whole in one transaction."""

    job_id: int
    processed: int
    created: int
    failed: int
    verdict: Verdict


_LEASE = sa.bindparam("lease", type_=jobs.c.lease_until.type)
_NOW = sa.bindparam("now", type_=jobs.c.completed_at.type)
_CLAIM_WAITING = DirectStatement(
    lambda _: (
        jobs.update()
        .where(jobs.c.id == sa.bindparam("held_job"), jobs.c.status == JobStatus.SUBMITTED.value)
        .values(
            status=JobStatus.IN_PROGRESS.value,
            worker_id=sa.bindparam("held_by"),
            lease_until=_LEASE,
            attempts=jobs.c.attempts + 1,
            started_at=sa.func.coalesce(jobs.c.started_at, _NOW),
        )
    )
)
_OPEN_CLAIMS = DirectStatement(
    # Inline: without it PostgreSQL's compilation asks for the new ids back, which nobody reads.
    lambda _: (
        job_claims.insert()
        .inline()
        .values(
            job_id=sa.bindparam("held_job"),
            worker_id=sa.bindparam("held_by"),
            attempt=1,
            claimed_at=sa.bindparam("now", type_=job_claims.c.claimed_at.type),
            lease_until=sa.bindparam("lease", type_=job_claims.c.lease_until.type),
        )
    )
)
_COMPLETE_HELD = DirectStatement(
    lambda _: (
        jobs.update()
        .where(_HELD)
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
)
_UNCLAIM = DirectStatement(
    lambda _: (
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
)
_DROP_CLAIMS = DirectStatement(lambda _: job_claims.delete().where(_OPEN_CLAIM))
_END_CLAIMS = DirectStatement(
    lambda _: (
        job_claims.update()
        .where(_OPEN_CLAIM)
        .values(ended_at=sa.bindparam("now", type_=job_claims.c.ended_at.type))
    )
)


def claim_waiting(
    conn: sa.Connection, job_ids: Sequence[int], *, worker_id: str, now: datetime, lease_until: datetime
) -> None:
    """Claim waiting jobs (locked by this transaction) under one lease, counting an attempt for each."""
    held = [{"held_job": i, "held_by": worker_id, "now": now, "lease": lease_until} for i in job_ids]
    run_many(conn, _CLAIM_WAITING, held)
    run_many(conn, _OPEN_CLAIMS, held)


def complete_held(
    conn: sa.Connection, completions: Sequence[Completion], *, worker_id: str, now: datetime
) -> bool:
    """Give held jobs their counts and terminal status; False if any lease was lost (roll back then)."""
    updated = run_many(
        conn,
        _COMPLETE_HELD,
        [
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
        ],
    )
    if updated != len(completions):
        return False
    run_many(
        conn, _END_CLAIMS, [{"held_job": c.job_id, "held_by": worker_id, "now": now} for c in completions]
    )
    return True


def unclaim(conn: sa.Connection, job_ids: Sequence[int], *, worker_id: str) -> None:
    """Give back held jobs nothing was done for, waiting again as if never claimed: the attempt and
    the claim's audit row are undone."""
    held = [{"held_job": i, "held_by": worker_id} for i in job_ids]
    run_many(conn, _UNCLAIM, held)
    run_many(conn, _DROP_CLAIMS, held)
