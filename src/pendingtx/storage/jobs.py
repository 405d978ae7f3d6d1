"""Queries for jobs and their recorded problems; every lease-holding write names its worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.events import EventType
from pendingtx.domain.jobs import JobKind, JobStatus, RecordProblem, storable
from pendingtx.storage import events
from pendingtx.storage.driver import Statement, dialect_for, parameters_for, record_of, run
from pendingtx.storage.tables import job_problems, jobs


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


@dataclass(frozen=True, slots=True)
class EarlierJob:
    """The job an application already made with an Idempotency-Key, and what that request was."""

    id: int
    key: str
    request_digest: str


def _utc(name: str, column: sa.Column[Any]) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=column.type)


# --- acceptance -------------------------------------------------------------------------------------

# What a job is stored with, besides its status.
_SUBMITTED = (
    "key", "org_id", "app_id", "kind", "payload", "record_count", "submitted_at", "target",
    "idempotency_key", "request_digest",
)  # fmt: skip
_INSERT_JOB = Statement(
    jobs.insert()
    .values(
        status=JobStatus.SUBMITTED.value,
        **parameters_for(jobs, *_SUBMITTED),
    )
    .returning(jobs.c.id)
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
    values = {
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
    }
    job_id = int(run(conn, _INSERT_JOB, values).one().id)
    events.record(conn, EventType.SUBMITTED, [job_id], org_id=org_id, now=now)
    return job_id


_REKEY_JOB = Statement(
    jobs.update()
    .where(jobs.c.id == sa.bindparam("job_id", type_=jobs.c.id.type))
    .values(key=sa.bindparam("new_key"))
)


def rekey(conn: sa.Connection, job_id: int, key: str) -> None:
    """Give a job just inserted another key, in the same transaction (a sandbox's keys derive from the
    batch id, known only once the row is in); its events, written at commit, copy the new one."""
    run(conn, _REKEY_JOB, {"job_id": job_id, "new_key": key})


def reserve_idempotency_key(conn: sa.Connection, *, app_id: int, key: str) -> bool:
    """Whether this transaction may store a job under the key: False, at once, while another one
    (of any process) is storing a job under it, so that the second of two concurrent requests
    neither waits for the first to commit nor stores a second job.
    """
    return dialect_for(conn).try_exclusive(conn, f"idempotency-key\n{app_id}\n{key}")


_BY_IDEMPOTENCY_KEY = Statement(
    sa.select(jobs.c.id, jobs.c.key, jobs.c.request_digest).where(
        jobs.c.app_id == sa.bindparam("app_id"), jobs.c.idempotency_key == sa.bindparam("idempotency_key")
    )
)


def find_by_idempotency_key(conn: sa.Connection, *, app_id: int, key: str) -> EarlierJob | None:
    """The job an application made with this Idempotency-Key, if any."""
    row = run(conn, _BY_IDEMPOTENCY_KEY, {"app_id": app_id, "idempotency_key": key}).first()
    return EarlierJob(row.id, row.key, row.request_digest) if row is not None else None


# --- the status read ----------------------------------------------------------------------------------

# What the status endpoint shows of a job (the fields of JobRecord), labelled `job_…` so that it can
# share a row with other tables.
STATUS_COLUMNS = tuple(jobs.c[name].label(f"job_{name}") for name in JobRecord.__dataclass_fields__)


def job_record(row: Any) -> JobRecord | None:
    """The job of a row holding STATUS_COLUMNS (None when an outer join found no job)."""
    return None if row.job_id is None else record_of(JobRecord, row, prefix="job_")


# Named, as SQLite renders an OFFSET with any LIMIT.
FIRST_PROBLEMS = Statement(
    sa.select(
        job_problems.c.record_index, job_problems.c.external_id, job_problems.c.field, job_problems.c.reason
    )
    .where(job_problems.c.job_id == sa.bindparam("job_id"))
    .order_by(job_problems.c.record_index, job_problems.c.id)
    .limit(sa.bindparam("limit"))
    .offset(sa.bindparam("offset"))
)


def problems_of_rows(rows: Sequence[Any]) -> list[RecordProblem]:
    """Rows of FIRST_PROBLEMS as problems."""
    return [RecordProblem(row.record_index, row.external_id, row.field, row.reason) for row in rows]


# --- problems -----------------------------------------------------------------------------------------

_INSERT_PROBLEM = Statement(
    job_problems.insert()
    .inline()
    .values(parameters_for(job_problems, "job_id", "record_index", "external_id", "field", "reason"))
)


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
    # Nothing reads them back in the same transaction: they may go with its commit.
    dialect_for(conn).write_at_commit(conn, _INSERT_PROBLEM, rows)
