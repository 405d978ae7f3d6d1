"""Cancelling a job (contract 7.4): `POST /v1/jobs/{appName}/cancel/{key}`."""

from __future__ import annotations

import sqlalchemy as sa

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain.jobs import progress_message
from pendingtx.services.authentication import Caller
from pendingtx.services.job_status import JobView, check_path
from pendingtx.storage import cancellation, retention
from pendingtx.storage import jobs as job_repo
from pendingtx.storage.driver import run
from pendingtx.storage.unit_of_work import UnitOfWork


def cancel_job(
    uow: UnitOfWork, caller: Caller, app_name: str, key: str, *, clock: Clock, max_problems: int
) -> JobView:
    """Cancel the caller's job and show it as the status endpoint would: a waiting job is `Cancelled`
    now, a job in progress stops at its next chunk (still `In Progress` here). 409 when it had
    finished, 410 when retention deleted it, 404 when the organization has no such job.
    """
    check_path(app_name, key)
    with uow.write() as conn:
        job, took = cancellation.cancel(conn, caller.org_id, key, now=clock())
        if job is None:
            raise missing(conn, caller.org_id, key)
        if not took:
            raise errors.JobAlreadyFinished(f"Job {key} has already finished: {job.status.value}")
        return view_of(conn, job, max_problems)


def missing(conn: sa.Connection, org_id: int, key: str) -> errors.ApiError:
    """The error for a key the organization has no job under: 410 if retention deleted it, else 404."""
    if retention.swept(conn, org_id, key):
        return errors.Gone(f"Job {key} was deleted after its retention period")
    return errors.NotFound(f"No job with key {key}")


def view_of(conn: sa.Connection, job: job_repo.JobRecord, max_problems: int) -> JobView:
    """The job as the status endpoint shows it, with at most `max_problems` of its problems."""
    rows = run(conn, job_repo.FIRST_PROBLEMS, {"job_id": job.id, "limit": max_problems + 1, "offset": 0})
    problems = job_repo.problems_of_rows(rows.all()) if job.failed_count else []
    return JobView(job, message_of(job), problems[:max_problems], truncated=len(problems) > max_problems)


def message_of(job: job_repo.JobRecord) -> str:
    """The job's message as the status endpoint gives it."""
    if job.status.terminal:
        return job.message or job.status.value
    return progress_message(job.status, processed=job.processed_count, record_count=job.record_count)
