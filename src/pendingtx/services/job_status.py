"""Reading a job's status, scoped to the caller's organization."""

from __future__ import annotations

from dataclasses import dataclass

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain.credentials import TokenLifetimes, token_digest
from pendingtx.domain.jobs import RecordProblem, is_possible_key, progress_message
from pendingtx.domain.networks import Address
from pendingtx.services import credentials
from pendingtx.services.abuse import Budget
from pendingtx.services.credentials import Caller
from pendingtx.storage import jobs as repo
from pendingtx.storage.hot_reads import HotReads
from pendingtx.storage.unit_of_work import UnitOfWork

APP_NAME = "insight"


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the status endpoint reports it."""

    job: repo.JobRecord
    message: str
    problems: list[RecordProblem]

    @property
    def terminal(self) -> bool:
        """Whether the status will never change again."""
        return self.job.status.terminal


def check_path(app_name: str, key: str) -> None:
    """400 for an unknown appName or a key that cannot exist, naming the offending part."""
    problems = []
    if app_name != APP_NAME:
        problems.append(errors.ErrorDetail(field="appName", location="path", reason=f"must be '{APP_NAME}'"))
    if not is_possible_key(key):
        problems.append(
            errors.ErrorDetail(
                field="key", location="path", reason="must be 1-128 characters of A-Z a-z 0-9 _ = + -"
            )
        )
    if problems:
        raise errors.ValidationFailed(errors=problems)


def job_status(uow: UnitOfWork, caller: Caller, key: str) -> JobView:
    """The caller's job with this key, or NotFound (also for another organization's key)."""
    with uow.read() as conn:
        job = repo.find_job(conn, key=key, org_id=caller.org_id)
        if job is None:
            raise errors.NotFound(f"No job with key {key}")
        problems = repo.problems_of(conn, job.id) if job.failed_count else []
    return _view(job, problems)


def read_status(
    uow: UnitOfWork,
    reads: HotReads,
    *,
    authorization: str | None,
    app_key: str | None,
    address: Address | None,
    budget: Budget,
    app_name: str,
    key: str,
    lifetimes: TokenLifetimes,
    clock: Clock,
) -> JobView:
    """The whole status GET: authentication and the job in one read, then the contract's checks in order.

    The application's status-read budget is charged once the caller is admitted, before the path is
    checked: a caller cannot poll unknown keys beyond its budget.
    """
    digest = token_digest(credentials.bearer_token(authorization))
    found, job, problems = reads.token_and_job(digest, key)
    now = clock()
    caller = credentials.admit(found, app_key=app_key, address=address, lifetimes=lifetimes, now=now)
    assert found is not None
    budget.charge(caller.app_id)
    credentials.note_use(uow, found, lifetimes=lifetimes, now=now)
    check_path(app_name, key)
    if job is None:
        raise errors.NotFound(f"No job with key {key}")
    return _view(job, problems)


def _view(job: repo.JobRecord, problems: list[RecordProblem]) -> JobView:
    if job.status.terminal:
        message = job.message or job.status.value
    else:
        message = progress_message(job.status, processed=job.processed_count, record_count=job.record_count)
    return JobView(job=job, message=message, problems=problems)
