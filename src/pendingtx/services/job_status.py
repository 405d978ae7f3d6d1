"""Reading a job's status, scoped to the caller's organization."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec, Protocol, TypeVar

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain.credentials import TokenLifetimes, token_digest
from pendingtx.domain.jobs import RecordProblem, is_possible_key, progress_message
from pendingtx.domain.networks import Address
from pendingtx.services import credentials
from pendingtx.services.abuse import Budget
from pendingtx.services.credentials import Caller
from pendingtx.storage import jobs as repo
from pendingtx.storage.apps import TokenRecord
from pendingtx.storage.hot_reads import HotReads
from pendingtx.storage.unit_of_work import UnitOfWork

APP_NAME = "insight"
# How many problems a status answer lists by default (the setting status_max_problems).
MAX_PROBLEMS = 1000

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the status endpoint reports it."""

    job: repo.JobRecord
    message: str
    problems: list[RecordProblem]
    # Whether the job has more problems than `problems` lists.
    truncated: bool = False

    @property
    def terminal(self) -> bool:
        """Whether the status will never change again."""
        return self.job.status.terminal


class TerminalAnswers:
    """Encoded answers about terminal jobs (which never change), by organization and job id.

    An answer is handed out only after the caller has been authenticated, budgeted and found to
    own the job, on every request: only the work of rendering it is saved. Answers are bounded in
    total size; the oldest are dropped first.
    """

    def __init__(self, *, max_bytes: int = 16 * 1024 * 1024, max_answer_bytes: int = 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.max_answer_bytes = max_answer_bytes
        self._answers: dict[tuple[int, int], bytes] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, org_id: int, job_id: int) -> bytes | None:
        """The answer kept for this organization's job, if any."""
        return self._answers.get((org_id, job_id))

    def put(self, org_id: int, job_id: int, answer: bytes) -> None:
        """Keep an answer about a terminal job of this organization."""
        if len(answer) > self.max_answer_bytes:
            return
        with self._lock:
            if (org_id, job_id) in self._answers:
                return
            answers = self._answers
            while answers and self._size + len(answer) > self.max_bytes:
                self._size -= len(answers.pop(next(iter(answers))))
            answers[org_id, job_id] = answer
            self._size += len(answer)

    def __len__(self) -> int:
        return len(self._answers)


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """The encoded status answer, and whether the job is terminal (no polling hint then)."""

    body: bytes
    terminal: bool


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


def job_status(uow: UnitOfWork, caller: Caller, key: str, *, max_problems: int = MAX_PROBLEMS) -> JobView:
    """The caller's job with this key, or NotFound (also for another organization's key)."""
    with uow.read() as conn:
        job = repo.find_job(conn, key=key, org_id=caller.org_id)
        if job is None:
            raise errors.NotFound(f"No job with key {key}")
        # One row more than is listed tells whether there are more.
        problems = repo.problems_of(conn, job.id, max_problems + 1) if job.failed_count else []
    return _view(job, problems, max_problems)


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """What a status GET carries: its credentials, where it comes from, and its path."""

    authorization: str | None
    app_key: str | None
    address: Address | None
    app_name: str
    key: str


@dataclass(frozen=True, slots=True)
class StatusService:
    """What answering status GETs uses, made once per process."""

    uow: UnitOfWork
    reads: HotReads
    budget: Budget
    lifetimes: TokenLifetimes
    clock: Clock
    render: Callable[[JobView], bytes]
    answers: TerminalAnswers
    max_problems: int = MAX_PROBLEMS


def read_status(service: StatusService, request: StatusRequest) -> StatusAnswer:
    """The whole status GET: authentication and the job in one read, then the contract's checks in order.

    The application's status-read budget is charged once the caller is admitted, before the path is
    checked: a caller cannot poll unknown keys beyond its budget. The job is rendered by the
    service's `render`, or for a terminal job taken from its `answers` once rendered.
    """
    found, job = service.reads.token_and_job(_digest(request), request.key)
    now = service.clock()
    caller = _admit(service, request, found, now)
    assert found is not None
    service.budget.charge(caller.app_id)
    credentials.note_use(service.uow, found, lifetimes=service.lifetimes, now=now)
    job = _owned(request, job)
    return _kept(service, caller, job) or _render(service, caller, job)


class Database(Protocol):
    """How a coroutine on the event loop waits on the database (api.blocking.DatabaseCalls)."""

    async def __call__(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The blocking function's result, computed off the event loop within the deadline."""

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """The awaitable's result within the deadline."""


async def read_status_async(service: StatusService, request: StatusRequest, db: Database) -> StatusAnswer:
    """`read_status` on PostgreSQL: the same steps in the same order, the read awaited on the event loop.

    The steps that may block on the database (a new budget lease, the last-use stamp, reading
    problems to render an answer) run through `db` in a thread, and only when they are due.
    """
    found, job = await db.wait(service.reads.token_and_job_async(_digest(request), request.key))
    now = service.clock()
    caller = _admit(service, request, found, now)
    assert found is not None
    if not service.budget.spend_leased(caller.app_id):
        await db(service.budget.charge, caller.app_id)
    if service.lifetimes.needs_touch(last_used_at=found.last_used_at, now=now):
        await db(credentials.note_use, service.uow, found, lifetimes=service.lifetimes, now=now)
    job = _owned(request, job)
    kept = _kept(service, caller, job)
    if kept is not None:
        return kept
    if not job.failed_count:  # nothing more to read: rendering does not block
        return _render(service, caller, job)
    return await db(_render, service, caller, job)


def _digest(request: StatusRequest) -> str:
    return token_digest(credentials.bearer_token(request.authorization))


def _admit(
    service: StatusService, request: StatusRequest, found: TokenRecord | None, now: datetime
) -> Caller:
    return credentials.admit(
        found, app_key=request.app_key, address=request.address, lifetimes=service.lifetimes, now=now
    )


def _owned(request: StatusRequest, job: repo.JobRecord | None) -> repo.JobRecord:
    """The job the path names, found in the caller's organization; 404 otherwise."""
    check_path(request.app_name, request.key)
    if job is None:
        raise errors.NotFound(f"No job with key {request.key}")
    return job


def _kept(service: StatusService, caller: Caller, job: repo.JobRecord) -> StatusAnswer | None:
    kept = service.answers.get(caller.org_id, job.id) if job.status.terminal else None
    return StatusAnswer(kept, True) if kept is not None else None


def _render(service: StatusService, caller: Caller, job: repo.JobRecord) -> StatusAnswer:
    limit = service.max_problems
    problems = service.reads.problems(job.id, limit + 1) if job.failed_count else []
    body = service.render(_view(job, problems, limit))
    if job.status.terminal:
        # The job was found within the caller's organization (the read joins the token's), and so is kept.
        service.answers.put(caller.org_id, job.id, body)
    return StatusAnswer(body, job.status.terminal)


def _view(job: repo.JobRecord, problems: list[RecordProblem], max_problems: int) -> JobView:
    """The job as reported, listing at most `max_problems` of the `problems` read (one more, if any)."""
    if job.status.terminal:
        message = job.message or job.status.value
    else:
        message = progress_message(job.status, processed=job.processed_count, record_count=job.record_count)
    truncated = len(problems) > max_problems
    return JobView(job=job, message=message, problems=problems[:max_problems], truncated=truncated)
