"""Claiming the next job: the one place where SQLite and PostgreSQL are handled differently."""

from __future__ import annotations

from datetime import datetime
from functools import cache

import sqlalchemy as sa

from pendingtx.domain.jobs import JobKind, JobStatus
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.tables import job_claims, jobs

# PostgreSQL notification channel that announces committed jobs to every worker process.
CHANNEL = "pendingtx_jobs"


def announce_job(conn: sa.Connection) -> None:
    """Tell other processes' workers, at commit, that a job is waiting (SQLite has one process)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_notify(CHANNEL, "")))


_UNFINISHED = (JobStatus.SUBMITTED.value, JobStatus.IN_PROGRESS.value)


def _waits_for_earlier_modification() -> sa.Exists:
    # Modifications of one transaction apply in the order they were accepted, whatever the workers do.
    earlier = jobs.alias("earlier")
    return sa.exists().where(
        earlier.c.org_id == jobs.c.org_id,
        earlier.c.target == jobs.c.target,
        earlier.c.id < jobs.c.id,
        earlier.c.status.in_(_UNFINISHED),
    )


@cache
def _claim_statement(dialect: str) -> sa.Update:
    now = sa.bindparam("now", type_=jobs.c.lease_until.type)
    claimable = (
        sa.select(jobs.c.id)
        .where(
            sa.or_(
                jobs.c.status == JobStatus.SUBMITTED.value,
                sa.and_(jobs.c.status == JobStatus.IN_PROGRESS.value, jobs.c.lease_until <= now),
            ),
            sa.or_(jobs.c.target.is_(None), ~_waits_for_earlier_modification()),
        )
        .order_by(jobs.c.id)
        .limit(1)
    )
    if dialect == "postgresql":
        # Concurrent claimers skip each other's rows instead of queueing behind them.
        claimable = claimable.with_for_update(skip_locked=True)
    # SQLite needs no row locks: the claim runs under BEGIN IMMEDIATE, so one writer at a time.
    return (
        jobs.update()
        .where(jobs.c.id == claimable.scalar_subquery())
        .values(
            status=JobStatus.IN_PROGRESS.value,
            worker_id=sa.bindparam("worker_id"),
            lease_until=sa.bindparam("lease_until"),
            attempts=jobs.c.attempts + 1,
            started_at=sa.func.coalesce(jobs.c.started_at, now),
        )
        .returning(
            jobs.c.id,
            jobs.c.org_id,
            jobs.c.kind,
            jobs.c.payload,
            jobs.c.record_count,
            jobs.c.processed_count,
            jobs.c.created_count,
            jobs.c.failed_count,
            jobs.c.attempts,
            jobs.c.target,
        )
    )


def claim_next(
    conn: sa.Connection, *, worker_id: str, now: datetime, lease_until: datetime
) -> ClaimedJob | None:
    """Take the oldest waiting job, or one whose holder's lease ran out, in one statement."""
    row = conn.execute(
        _claim_statement(conn.dialect.name), {"now": now, "worker_id": worker_id, "lease_until": lease_until}
    ).first()
    if row is None:
        return None
    conn.execute(
        job_claims.insert(),
        {
            "job_id": row[0],
            "worker_id": worker_id,
            "attempt": row[8],
            "claimed_at": now,
            "lease_until": lease_until,
        },
    )
    return ClaimedJob(
        id=row[0],
        org_id=row[1],
        kind=JobKind(row[2]),
        payload=bytes(row[3]),
        record_count=row[4],
        processed_count=row[5],
        created_count=row[6],
        failed_count=row[7],
        attempts=row[8],
        target=row[9],
    )
