"""Claiming the next job: the one place where SQLite and PostgreSQL are handled differently."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.jobs import JobKind, JobStatus
from pendingtx.storage.direct import DirectStatement, run
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
        # Not IN (...): a list of values is expanded at execution, which a statement run directly cannot be.
        sa.or_(*(earlier.c.status == status for status in _UNFINISHED)),
    )


def _claimable() -> sa.ColumnElement[bool]:
    now = sa.bindparam("now", type_=jobs.c.lease_until.type)
    return sa.and_(
        sa.or_(
            jobs.c.status == JobStatus.SUBMITTED.value,
            sa.and_(jobs.c.status == JobStatus.IN_PROGRESS.value, jobs.c.lease_until <= now),
        ),
        sa.or_(jobs.c.target.is_(None), ~_waits_for_earlier_modification()),
    )


@cache
def _claim_statement(dialect: str) -> sa.Update:
    now = sa.bindparam("now", type_=jobs.c.lease_until.type)
    claimable = sa.select(jobs.c.id).where(_claimable()).order_by(jobs.c.id).limit(1)
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


@dataclass(frozen=True, slots=True)
class Candidate:
    """A claimable job as a batch claim sees it, with its payload when it is small enough to batch."""

    id: int
    org_id: int
    status: JobStatus
    kind: JobKind
    record_count: int
    target: str | None
    payload: bytes | None

    def claimed(self) -> ClaimedJob:
        """The job as claimed by the transaction that read it (a waiting job: nothing done yet)."""
        assert self.payload is not None
        return ClaimedJob(
            id=self.id,
            org_id=self.org_id,
            kind=self.kind,
            payload=self.payload,
            record_count=self.record_count,
            processed_count=0,
            created_count=0,
            failed_count=0,
            attempts=1,
            target=self.target,
        )


def _candidates_statement(dialect: str) -> sa.Select[Any]:
    # Only a payload that could be batched is read: a large job's is left for the worker that claims it.
    small = sa.and_(
        jobs.c.status == JobStatus.SUBMITTED.value,
        jobs.c.kind != JobKind.MODIFY.value,
        jobs.c.record_count <= sa.bindparam("max_records"),
    )
    query = (
        sa.select(
            jobs.c.id,
            jobs.c.org_id,
            jobs.c.status,
            jobs.c.kind,
            jobs.c.record_count,
            jobs.c.target,
            sa.case((small, jobs.c.payload), else_=sa.null()),
        )
        .where(_claimable())
        .order_by(jobs.c.id)
        .limit(sa.bindparam("limit"))
    )
    # Locked until the batch commits: other workers skip these rows rather than wait on them.
    return query.with_for_update(skip_locked=True) if dialect == "postgresql" else query


_CANDIDATES = DirectStatement(_candidates_statement)


def next_candidates(conn: sa.Connection, *, now: datetime, limit: int, max_records: int) -> list[Candidate]:
    """The oldest claimable jobs, in the order a worker must take them."""
    rows = run(conn, _CANDIDATES, {"now": now, "limit": limit, "max_records": max_records}).fetchall()
    return [
        Candidate(
            r[0], r[1], JobStatus(r[2]), JobKind(r[3]), r[4], r[5], None if r[6] is None else bytes(r[6])
        )
        for r in rows
    ]
