"""Reading a job's status, scoped to the caller's organization: the service's hot path.

One read brings the caller's token and the job together; the contract's checks then run in order.
The composition root picks how the read is made: `BlockingStatusReader` (SQLite, a local read on
the event loop) or `AwaitedStatusReader` (PostgreSQL, the read awaited on the event loop and only
the steps that may block handed to threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pendingtx import errors
from pendingtx.blocking import BlockingCalls
from pendingtx.domain.jobs import RecordProblem, is_possible_key, progress_message
from pendingtx.services.abuse import Budget
from pendingtx.services.authentication import Admission, Authenticator, Caller, Credentials
from pendingtx.storage import jobs as repo
from pendingtx.storage.apps import TokenRecord

APP_NAME = "insight"
# How many problems a status answer lists by default (the setting status_max_problems).
MAX_PROBLEMS = 1000


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


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """An encoded answer about a terminal job: the job's id (a key may name another job after a
    sandbox's reset) and its organization's cache generation when it was read (None where
    generations are not kept)."""

    body: bytes
    job_id: int
    generation: int | None


class FinishedAnswerCache:
    """Encoded answers about terminal jobs (which never change), by organization and job key.

    An answer is handed out only after the caller has been authenticated, budgeted and found to
    own the job, on every request: only the work of rendering it (and, while the organization's
    generation holds, of reading the job) is saved. Answers are bounded in total size; the oldest
    are dropped first.
    """

    def __init__(self, *, max_bytes: int = 16 * 1024 * 1024, max_answer_bytes: int = 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.max_answer_bytes = max_answer_bytes
        self._answers: dict[tuple[int, str], KeptAnswer] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, org_id: int, key: str) -> KeptAnswer | None:
        """The answer kept for this organization's job, if any."""
        return self._answers.get((org_id, key))

    def put(self, org_id: int, job: repo.JobRecord, answer: bytes, generation: int | None = None) -> None:
        """Keep an answer about a terminal job of this organization."""
        key = job.key
        if len(answer) > self.max_answer_bytes:
            return
        with self._lock:
            answers = self._answers
            before = answers.pop((org_id, key), None)
            if before is not None:
                self._size -= len(before.body)
            while answers and self._size + len(answer) > self.max_bytes:
                self._size -= len(answers.pop(next(iter(answers))).body)
            answers[org_id, key] = KeptAnswer(answer, job.id, generation)
            self._size += len(answer)

    def forget(self, org_id: int) -> None:
        """Drop the organization's answers (a sandbox's reset deleted its jobs, whose keys a seeded
        sandbox gives out again)."""
        with self._lock:
            for key in [k for k in self._answers if k[0] == org_id]:
                self._size -= len(self._answers.pop(key).body)

    def __len__(self) -> int:
        return len(self._answers)


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """The encoded status answer, and whether the job is terminal (no polling hint then)."""

    body: bytes
    terminal: bool
    # The caller's organization, when the job is not terminal (a long-poll waits on its events).
    org_id: int = 0


def check_app_name(app_name: str) -> None:
    """400 for an unknown appName."""
    if app_name != APP_NAME:
        raise errors.ValidationFailed(
            errors=[errors.ErrorDetail(field="appName", location="path", reason=f"must be '{APP_NAME}'")]
        )


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


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """What a status GET carries: its credentials and its path."""

    credentials: Credentials
    app_name: str
    key: str


@dataclass(frozen=True, slots=True)
class StatusService:
    """What answering status GETs uses, made once per process."""

    authenticator: Authenticator
    budget: Budget
    render: Callable[[JobView], bytes]
    answers: FinishedAnswerCache
    max_problems: int = MAX_PROBLEMS


class StatusReader(Protocol):
    """Answers one status GET (the composition root picks the implementation for the database)."""

    async def __call__(self, request: StatusRequest) -> StatusAnswer:
        """The status answer, or the error the contract's checks raise."""

    async def reread(self, org_id: int, key: str) -> StatusAnswer:
        """The answer again for a request already admitted (a held read): the job alone is read."""


class BlockingStatusReader:
    """Reads through blocking calls (on SQLite, inline on the event loop: a local read)."""

    def __init__(self, service: StatusService, calls: BlockingCalls) -> None:
        self.service = service
        self.calls = calls

    async def __call__(self, request: StatusRequest) -> StatusAnswer:
        """The whole status GET in one blocking call."""
        return await self.calls(read_status, self.service, request)

    async def reread(self, org_id: int, key: str) -> StatusAnswer:
        """The job alone, read again in one blocking call."""
        return await self.calls(reread_status, self.service, org_id, key)


def reread_status(service: StatusService, org_id: int, key: str) -> StatusAnswer:
    """The answer about the organization's job `key` for a request admitted before (a held read)."""
    reads = service.authenticator.reads
    generation = reads.generation(org_id)  # before the read: a later change makes it outdated
    job = reads.job(org_id, key)
    if job is None:
        raise errors.NotFound(f"No job with key {key}")
    return _kept_for(service, org_id, job) or _render(service, org_id, job, generation)


def read_status(service: StatusService, request: StatusRequest) -> StatusAnswer:
    """The whole status GET, blocking: authentication and the job in one read, then the checks in order.

    A token kept in memory (storage.hot_reads) saves the read of the token, and a terminal job's
    answer kept with its organization's generation the read of the job. The application's
    status-read budget is charged once the caller is admitted, before the path is checked: a caller
    cannot poll unknown keys beyond its budget. The job is rendered by the service's `render`, or
    for a terminal job taken from its `answers` once rendered.
    """
    reads = service.authenticator.reads
    digest = request.credentials.token_digest()
    kept_token = reads.kept_token(digest)
    found: TokenRecord | None
    job: repo.JobRecord | None
    if kept_token is not None:
        found, job = kept_token, None
    else:
        found, job = reads.token_and_job(digest, request.key)
    admission = service.authenticator.admit_kept(found, request.credentials, service.budget)
    for step in admission.pending:
        step()
    check_path(request.app_name, request.key)
    org_id = admission.caller.org_id
    if kept_token is not None:
        # Just found to hold by `kept_token`: what is kept was current when this request was read.
        generation: int | None = kept_token.generation
        kept = service.answers.get(org_id, request.key)
        if kept is not None and kept.generation == generation:
            return StatusAnswer(kept.body, True)
        job = reads.job(org_id, request.key)
        if kept is not None and job is not None and kept.job_id == job.id:
            # Still the same terminal job: its answer holds, stamped with the generation now.
            service.answers.put(org_id, job, kept.body, generation)
            return StatusAnswer(kept.body, True)
    else:
        assert found is not None  # admitted
        generation = found.generation if reads.keeps else None
    if job is None:
        raise _missing(service, admission.caller, request.key)
    return _kept(service, admission, job) or _render(service, org_id, job, generation)


class AwaitedStatusReader:
    """Awaits the read on the event loop (PostgreSQL): no thread hop on the hot path. The steps that
    may block (a new budget lease, the last-use stamp, reading problems to render an answer) go
    through `calls`, and only when they are due."""

    def __init__(self, service: StatusService, calls: BlockingCalls) -> None:
        self.service = service
        self.calls = calls

    async def __call__(self, request: StatusRequest) -> StatusAnswer:
        """The same steps as `read_status`, in the same order."""
        service = self.service
        reads = service.authenticator.reads
        digest = request.credentials.token_digest()
        found, job = await self.calls.wait(reads.token_and_job_awaited(digest, request.key))
        admission = service.authenticator.admit(found, request.credentials, service.budget)
        for step in admission.pending:
            await self.calls(step)
        check_path(request.app_name, request.key)
        if job is None:
            raise await self.calls(_missing, service, admission.caller, request.key)
        kept = _kept(service, admission, job)
        if kept is not None:
            return kept
        if not job.failed_count:  # nothing more to read: rendering does not block
            return _render(service, admission.caller.org_id, job)
        return await self.calls(_render, service, admission.caller.org_id, job)

    async def reread(self, org_id: int, key: str) -> StatusAnswer:
        """As `reread_status`, the read awaited on the event loop."""
        service = self.service
        job = await self.calls.wait(service.authenticator.reads.job_awaited(org_id, key))
        if job is None:
            raise errors.NotFound(f"No job with key {key}")
        kept = _kept_for(service, org_id, job)
        if kept is not None:
            return kept
        if not job.failed_count:
            return _render(service, org_id, job)
        return await self.calls(_render, service, org_id, job)


def _missing(service: StatusService, caller: Caller, key: str) -> errors.ApiError:
    """The answer for a key the caller's organization has no job under: 410 when retention deleted
    it, 404 otherwise (another organization's key included). Looked up only once the job is missing.
    """
    if service.authenticator.reads.swept(caller.org_id, key):
        return errors.Gone(f"Job {key} was deleted after its retention period")
    return errors.NotFound(f"No job with key {key}")


def _kept(service: StatusService, admission: Admission, job: repo.JobRecord) -> StatusAnswer | None:
    return _kept_for(service, admission.caller.org_id, job)


def _kept_for(service: StatusService, org_id: int, job: repo.JobRecord) -> StatusAnswer | None:
    kept = service.answers.get(org_id, job.key) if job.status.terminal else None
    return StatusAnswer(kept.body, True) if kept is not None and kept.job_id == job.id else None


def _render(
    service: StatusService, org_id: int, job: repo.JobRecord, generation: int | None = None
) -> StatusAnswer:
    limit = service.max_problems
    # One row more than is listed tells whether there are more.
    problems = service.authenticator.reads.problems(job.id, limit + 1) if job.failed_count else []
    body = service.render(_view(job, problems, limit))
    if job.status.terminal:
        # The job was found within the caller's organization (the read joins the token's), and so is kept.
        service.answers.put(org_id, job, body, generation)
    return StatusAnswer(body, job.status.terminal, org_id)


def _view(job: repo.JobRecord, problems: list[RecordProblem], max_problems: int) -> JobView:
    """The job as reported, listing at most `max_problems` of the `problems` read (one more, if any)."""
    if job.status.terminal:
        message = job.message or job.status.value
    else:
        message = progress_message(job.status, processed=job.processed_count, record_count=job.record_count)
    truncated = len(problems) > max_problems
    return JobView(job=job, message=message, problems=problems[:max_problems], truncated=truncated)
