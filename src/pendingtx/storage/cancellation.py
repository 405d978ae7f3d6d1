"""Cancelling jobs (contract 7.4): a waiting job at once, a held one by its worker at its next chunk.

Every write here is conditional on the status it expects, so a cancel racing a claim or a verdict
changes the job once or not at all: a waiting job is either cancelled or claimed, never both; a held
job either records the request (its worker ends it at its next chunk) or has already ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.events import EventType
from pendingtx.domain.jobs import JobStatus, cancelled
from pendingtx.storage import events
from pendingtx.storage.driver import Statement, run
from pendingtx.storage.jobs import STATUS_COLUMNS, JobRecord, job_record
from pendingtx.storage.tables import job_claims, jobs

_NOW = sa.bindparam("now", type_=jobs.c.completed_at.type)
_OWNED = sa.and_(jobs.c.key == sa.bindparam("key"), jobs.c.org_id == sa.bindparam("org_id"))

_FIND = Statement(sa.select(*STATUS_COLUMNS).where(_OWNED))
_CANCEL_WAITING = Statement(
    jobs.update()
    .where(_OWNED, jobs.c.status == JobStatus.SUBMITTED.value)
    .values(
        status=JobStatus.CANCELLED.value,
        message=sa.bindparam("message"),
        completed_at=_NOW,
        worker_id=None,
        lease_until=None,
    )
    .returning(jobs.c.id)
)
_REQUEST_CANCEL = Statement(
    jobs.update()
    .where(_OWNED, jobs.c.status == JobStatus.IN_PROGRESS.value)
    .values(cancel_requested_at=sa.func.coalesce(jobs.c.cancel_requested_at, _NOW))
    .returning(jobs.c.id)
)


def find_job(conn: sa.Connection, org_id: int, key: str) -> JobRecord | None:
    """The organization's job with this key, as the status endpoint shows it."""
    row = run(conn, _FIND, {"key": key, "org_id": org_id}).first()
    return None if row is None else job_record(row)


def cancel(conn: sa.Connection, org_id: int, key: str, *, now: datetime) -> tuple[JobRecord | None, bool]:
    """Cancel the organization's job: a waiting one ends `Cancelled` now (its event recorded here),
    a held one is asked to stop at its next chunk. Returns the job as it stands afterwards (None
    when the organization has no such job) and whether the cancel took (False: it had ended).
    """
    job = find_job(conn, org_id, key)
    if job is None or job.status.terminal:
        return job, False
    values = {"key": key, "org_id": org_id, "now": now}
    message = cancelled(record_count=job.record_count, processed=0, created=0)
    row = run(conn, _CANCEL_WAITING, {**values, "message": message}).first()
    if row is not None:
        events.record(conn, EventType.COMPLETED, [row.id], org_id=org_id, now=now)
    else:
        # Claimed meanwhile (or held all along): its worker stops at its next chunk, unless it ended.
        row = run(conn, _REQUEST_CANCEL, values).first()
    return find_job(conn, org_id, key), row is not None


# --- the worker's side: a held job asked to stop ------------------------------------------------------

_HELD_CANCELLED = sa.and_(
    jobs.c.id == sa.bindparam("held_job"),
    jobs.c.worker_id == sa.bindparam("held_by"),
    jobs.c.status == JobStatus.IN_PROGRESS.value,
    jobs.c.cancel_requested_at.is_not(None),
)
_COUNTS = Statement(
    sa.select(jobs.c.org_id, jobs.c.record_count, jobs.c.processed_count, jobs.c.created_count).where(
        _HELD_CANCELLED
    )
)
_STOP = Statement(
    jobs.update()
    .where(_HELD_CANCELLED)
    .values(
        status=JobStatus.CANCELLED.value,
        message=sa.bindparam("message"),
        completed_at=_NOW,
        worker_id=None,
        lease_until=None,
    )
)
_END_CLAIM = Statement(
    job_claims.update()
    .where(
        job_claims.c.job_id == sa.bindparam("held_job"),
        job_claims.c.worker_id == sa.bindparam("held_by"),
        job_claims.c.ended_at.is_(None),
    )
    .values(ended_at=sa.bindparam("now", type_=job_claims.c.ended_at.type))
)


def stop_if_cancelled(conn: sa.Connection, *, job_id: int, worker_id: str, now: datetime) -> bool:
    """End a held job the client cancelled, with what it applied so far; False if it was not cancelled
    (or is no longer held by this worker). Its `job.completed` event is recorded here.
    """
    held: dict[str, Any] = {"held_job": job_id, "held_by": worker_id}
    row = run(conn, _COUNTS, held).first()
    if row is None:
        return False
    message = cancelled(
        record_count=row.record_count, processed=row.processed_count, created=row.created_count
    )
    if run(conn, _STOP, {**held, "message": message, "now": now}).rowcount != 1:
        return False
    events.record(conn, EventType.COMPLETED, [job_id], org_id=int(row.org_id), now=now)
    run(conn, _END_CLAIM, {**held, "now": now})
    return True
