"""Claiming the next job: organizations served in turn, each one's jobs in the order they came.

Claims run in write transactions: on SQLite one writer at a time (BEGIN IMMEDIATE), on PostgreSQL
with the claimed rows locked and other claimers skipping them (Dialect.lock_skipping).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.jobs import JobKind, JobStatus, QueueSnapshot
from pendingtx.storage import events
from pendingtx.storage.driver import Dialect, Statement, dialect_for, record_of, run
from pendingtx.storage.holds import open_claims
from pendingtx.storage.jobs import ClaimedJob
from pendingtx.storage.tables import job_claims, jobs, organizations

# PostgreSQL notification channel that announces committed jobs to every worker process.
CHANNEL = "pendingtx_jobs"


def announce_job(conn: sa.Connection) -> None:
    """Tell other processes' workers, at commit, that a job is waiting."""
    dialect_for(conn).announce(conn, CHANNEL)


_UNFINISHED = (JobStatus.SUBMITTED.value, JobStatus.IN_PROGRESS.value)
# At most this many organizations with waiting jobs are looked at per claim, least recently served first.
MAX_TURNS = 16


def _waits_for_earlier_modification() -> sa.Exists:
    # Modifications of one transaction apply in the order they were accepted, whatever the workers do.
    earlier = jobs.alias("earlier")
    return sa.exists().where(
        earlier.c.org_id == jobs.c.org_id,
        earlier.c.target == jobs.c.target,
        earlier.c.id < jobs.c.id,
        # Not IN (...): a list of values is expanded at execution, which a compiled-once statement cannot be.
        sa.or_(*(earlier.c.status == status for status in _UNFINISHED)),
    )


def _in_order() -> sa.ColumnElement[bool]:
    return sa.or_(jobs.c.target.is_(None), ~_waits_for_earlier_modification())


def _abandoned() -> sa.ColumnElement[bool]:
    """A job whose holder's lease ran out (it crashed, failed or handed the job back)."""
    now = sa.bindparam("now", type_=jobs.c.lease_until.type)
    return sa.and_(jobs.c.status == JobStatus.IN_PROGRESS.value, jobs.c.lease_until <= now)


def _claimable() -> sa.ColumnElement[bool]:
    return sa.and_(sa.or_(jobs.c.status == JobStatus.SUBMITTED.value, _abandoned()), _in_order())


def _in_org(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return sa.and_(condition, jobs.c.org_id == sa.bindparam("org_id"), _in_order())


def _turns_statement() -> sa.Select[Any]:
    """Organizations with claimable jobs, least recently served first.

    Those with waiting jobs are found by skipping along (status, org_id): one index probe per such
    organization, however many jobs each one has waiting, so a tenant with a deep backlog costs the
    others nothing here. Jobs in progress are few: those under an expired lease are simply read.
    """
    submitted = jobs.c.status == JobStatus.SUBMITTED.value
    seed = sa.select(sa.func.min(jobs.c.org_id).label("org_id")).where(submitted)
    skip = seed.cte("waiting_orgs", recursive=True)
    following = sa.select(sa.func.min(jobs.c.org_id)).where(submitted, jobs.c.org_id > skip.c.org_id)
    skip = skip.union_all(sa.select(following.scalar_subquery()).where(skip.c.org_id.is_not(None)))
    orgs = sa.union(sa.select(skip.c.org_id), sa.select(jobs.c.org_id).where(_abandoned())).subquery()
    return (
        sa.select(orgs.c.org_id)
        .join(organizations, organizations.c.id == orgs.c.org_id)
        .order_by(organizations.c.served_at.asc().nulls_first(), orgs.c.org_id)
        .limit(MAX_TURNS)
    )


_TURNS = Statement(_turns_statement())
_SERVED = Statement(
    organizations.update()
    .where(organizations.c.id == sa.bindparam("org_id"))
    .values(served_at=sa.bindparam("now", type_=organizations.c.served_at.type))
)


def organizations_in_turn(conn: sa.Connection, *, now: datetime) -> list[int]:
    """The organizations with claimable jobs, in the order they are to be served."""
    return [int(row.org_id) for row in run(conn, _TURNS, {"now": now}).all()]


def mark_served(conn: sa.Connection, org_ids: Collection[int], *, now: datetime) -> None:
    """Record that these organizations' jobs were just claimed: they go to the back of the turn."""
    served = [{"org_id": org_id, "now": now} for org_id in sorted(org_ids)]
    dialect_for(conn).write_at_commit(conn, _SERVED, served)


_OTHERS_WAITING = Statement(
    # Two probes of (status, org_id) rather than `org_id <>`, which would walk the caller's own backlog.
    sa.select(
        sa.or_(
            sa.exists().where(
                jobs.c.status == JobStatus.SUBMITTED.value, jobs.c.org_id < sa.bindparam("org_id")
            ),
            sa.exists().where(
                jobs.c.status == JobStatus.SUBMITTED.value, jobs.c.org_id > sa.bindparam("org_id")
            ),
            sa.exists().where(_abandoned(), jobs.c.org_id != sa.bindparam("org_id")),
        ).label("waiting")
    )
)


def others_waiting(conn: sa.Connection, org_id: int, *, now: datetime) -> bool:
    """Whether another organization has a claimable job (it may be a blocked modification)."""
    return bool(run(conn, _OTHERS_WAITING, {"org_id": org_id, "now": now}).scalar())


def _claim_statement(dialect: Dialect, which: sa.ColumnElement[bool]) -> sa.Update:
    now = sa.bindparam("now", type_=jobs.c.lease_until.type)
    claimable = dialect.lock_skipping(sa.select(jobs.c.id).where(which).order_by(jobs.c.id).limit(1))
    return (
        jobs.update()
        .where(jobs.c.id == claimable.scalar_subquery())
        .values(
            status=JobStatus.IN_PROGRESS.value,
            worker_id=sa.bindparam("worker_id"),
            lease_until=sa.bindparam("lease_until", type_=jobs.c.lease_until.type),
            attempts=jobs.c.attempts + 1,
            started_at=sa.func.coalesce(jobs.c.started_at, now),
        )
        .returning(*_CLAIMED_COLUMNS)
    )


_CLAIMED_COLUMNS = (
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
# Within an organization, a job under an expired lease is resumed before its waiting ones start.
_CLAIM_IN_ORG = (
    Statement(lambda dialect: _claim_statement(dialect, _in_org(_abandoned()))),
    Statement(lambda dialect: _claim_statement(dialect, _in_org(jobs.c.status == JobStatus.SUBMITTED.value))),
)
# Should every organization in turn have only modifications waiting behind others, any claimable job.
_CLAIM_ANY = Statement(lambda dialect: _claim_statement(dialect, _claimable()))


def _claim_row(conn: sa.Connection, values: dict[str, Any]) -> Any:
    for org_id in organizations_in_turn(conn, now=values["now"]):
        for statement in _CLAIM_IN_ORG:
            row = run(conn, statement, {**values, "org_id": org_id}).first()
            if row is not None:
                return row
    return run(conn, _CLAIM_ANY, values).first()


def claim_next(
    conn: sa.Connection, *, worker_id: str, now: datetime, lease_until: datetime
) -> ClaimedJob | None:
    """Take the next job of the organization whose turn it is (the one served least recently): one
    whose holder's lease ran out, else its oldest waiting job; each in one statement.
    """
    values = {"now": now, "worker_id": worker_id, "lease_until": lease_until}
    row = _claim_row(conn, values)
    if row is None:
        return None
    job = record_of(ClaimedJob, row)
    open_claims(conn, [(job.id, job.attempts)], worker_id=worker_id, now=now, lease_until=lease_until)
    mark_served(conn, [job.org_id], now=now)
    events.record_start(conn, job.id, org_id=job.org_id, now=now)
    return job


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


def _candidates_statement(dialect: Dialect, which: sa.ColumnElement[bool]) -> sa.Select[Any]:
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
            sa.case((small, jobs.c.payload), else_=sa.null()).label("payload"),
        )
        .where(which)
        .order_by(jobs.c.id)
        .limit(sa.bindparam("limit"))
    )
    # Locked until the batch commits: other workers skip these rows rather than wait on them.
    return dialect.lock_skipping(query)


_CANDIDATES_IN_ORG = (
    Statement(lambda dialect: _candidates_statement(dialect, _in_org(_abandoned()))),
    Statement(
        lambda dialect: _candidates_statement(dialect, _in_org(jobs.c.status == JobStatus.SUBMITTED.value))
    ),
)


def _candidates(rows: Sequence[Any]) -> list[Candidate]:
    return [record_of(Candidate, row) for row in rows]


def _queue(conn: sa.Connection, org_id: int, values: dict[str, Any]) -> list[Candidate]:
    abandoned, waiting = (
        run(conn, statement, {**values, "org_id": org_id}).all() for statement in _CANDIDATES_IN_ORG
    )
    return _candidates([*abandoned, *waiting])


def next_candidates(conn: sa.Connection, *, now: datetime, limit: int, max_records: int) -> list[Candidate]:
    """The claimable jobs in the order a worker must take them: the organizations' queues taken in
    turn (each one's first job, then each one's second, ...), the least recently served first.
    """
    values = {"now": now, "limit": limit, "max_records": max_records}
    queues = [_queue(conn, org_id, values) for org_id in organizations_in_turn(conn, now=now)]
    interleaved = [c for turn in itertools.zip_longest(*queues) for c in turn if c is not None]
    return interleaved[:limit]


_WAITING = Statement(
    sa.select(sa.func.count().label("waiting"), sa.func.min(jobs.c.submitted_at).label("oldest")).where(
        sa.or_(jobs.c.status == JobStatus.SUBMITTED.value, _abandoned())
    )
)
_BY_STATUS = Statement(sa.select(jobs.c.status, sa.func.count().label("jobs")).group_by(jobs.c.status))
_TAKEOVERS = Statement(
    sa.select(sa.func.count().label("claims")).select_from(job_claims).where(job_claims.c.attempt > 1)
)


def queue_snapshot(conn: sa.Connection, *, now: datetime) -> QueueSnapshot:
    """Jobs by status, the waiting ones (Submitted, or held under an expired lease), and takeovers."""
    by_status = {str(row.status): int(row.jobs) for row in run(conn, _BY_STATUS).all()}
    queue = run(conn, _WAITING, {"now": now}).one()
    takeovers = int(run(conn, _TAKEOVERS).scalar() or 0)
    oldest = queue.oldest
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return QueueSnapshot(by_status, int(queue.waiting), age, takeovers)
