"""Retention (contract 7.4): terminal jobs older than the retention period are deleted with their
payload, problems, claims and events, leaving a tombstone of their key; transactions are kept.

A sweep works in small batches, each in a transaction of its own, so it never holds the write lock
for long. A table whose rows belong to a job (or to one of its events) is deleted with it: add one
line to `CHILDREN`, children of children first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.jobs import JobStatus
from pendingtx.storage.driver import Dialect, Statement, parameters_for, run, run_many
from pendingtx.storage.events import keep_numbering
from pendingtx.storage.generations import bump
from pendingtx.storage.tables import (
    events,
    job_claims,
    job_problems,
    job_tombstones,
    jobs,
    webhook_deliveries,
)

_JOB = sa.bindparam("job_id", type_=jobs.c.id.type)


def _of_job(column: sa.Column[Any]) -> Statement:
    """Delete the rows of `column`'s table that belong to the job."""
    return Statement(sa.delete(column.table).where(column == _JOB))


def _of_events(column: sa.Column[Any]) -> Statement:
    """Delete the rows of `column`'s table that belong to one of the job's events."""
    of_job = sa.select(events.c.id).where(events.c.job_id == _JOB)
    return Statement(sa.delete(column.table).where(column.in_(of_job.scalar_subquery())))


# Deleted in this order before the job's row (a delivery's attempts go with it, by cascade).
CHILDREN: tuple[Statement, ...] = (
    _of_events(webhook_deliveries.c.event_id),
    _of_job(events.c.job_id),
    _of_job(job_problems.c.job_id),
    _of_job(job_claims.c.job_id),
)
_DELETE_JOB = Statement(sa.delete(jobs).where(jobs.c.id == _JOB))
_BURY = Statement(
    job_tombstones.insert()
    .inline()
    .values(parameters_for(job_tombstones, "key", "org_id", "batch_id", "swept_at"))
)


@dataclass(frozen=True, slots=True)
class Expired:
    """A terminal job past the retention period."""

    id: int
    key: str
    org_id: int
    record_count: int


def _expired_statement(dialect: Dialect) -> sa.Select[Any]:
    cutoff = sa.bindparam("cutoff", type_=jobs.c.completed_at.type)
    terminal = sa.or_(*(jobs.c.status == s.value for s in JobStatus if s.terminal))
    query = (
        sa.select(jobs.c.id, jobs.c.key, jobs.c.org_id, jobs.c.record_count)
        .where(jobs.c.completed_at < cutoff, terminal)
        .order_by(jobs.c.completed_at)
        .limit(sa.bindparam("limit"))
    )
    # Two sweeping processes take different jobs rather than wait on each other's.
    return dialect.lock_skipping(query)


_EXPIRED = Statement(_expired_statement)


def expired(conn: sa.Connection, *, cutoff: datetime, limit: int) -> list[Expired]:
    """Up to `limit` terminal jobs that ended before `cutoff`, the oldest first (locked on PostgreSQL)."""
    rows = run(conn, _EXPIRED, {"cutoff": cutoff, "limit": limit}).all()
    return [Expired(int(r.id), r.key, int(r.org_id), int(r.record_count)) for r in rows]


def delete_jobs(conn: sa.Connection, doomed: list[Expired], *, now: datetime) -> None:
    """Delete these jobs with everything that belongs to them, keeping a tombstone of each key."""
    if not doomed:
        return
    run_many(
        conn,
        _BURY,
        [{"key": j.key, "org_id": j.org_id, "batch_id": j.id, "swept_at": now} for j in doomed],
    )
    ids = [{"job_id": j.id} for j in doomed]
    keep_numbering(conn, (j.org_id for j in doomed))
    for statement in CHILDREN:
        run_many(conn, statement, ids)
    run_many(conn, _DELETE_JOB, ids)
    # Last, as event numbering takes the same rows last: the locks are held for the commit alone.
    bump(conn, (j.org_id for j in doomed))


TOMBSTONE = Statement(
    sa.select(job_tombstones.c.batch_id).where(
        job_tombstones.c.key == sa.bindparam("key"), job_tombstones.c.org_id == sa.bindparam("org_id")
    )
)


def swept(conn: sa.Connection, org_id: int, key: str) -> bool:
    """Whether retention deleted the organization's job with this key (another's stays unknown)."""
    return run(conn, TOMBSTONE, {"key": key, "org_id": org_id}).first() is not None
