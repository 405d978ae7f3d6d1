"""Storing a job durably before the 202, once per Idempotency-Key, and waking the workers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from pendingtx import errors
from pendingtx.blocking import BlockingCalls
from pendingtx.clock import Clock
from pendingtx.domain.jobs import JobKind, new_job_key, seeded_job_key
from pendingtx.services.authentication import Caller
from pendingtx.storage import jobs as repo
from pendingtx.storage import sandbox as sandbox_repo
from pendingtx.storage.claim import announce_job
from pendingtx.storage.unit_of_work import UnitOfWork

_KEY_SHAPE = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True, slots=True)
class AcceptedJob:
    """What the 202 tells the client."""

    key: str
    batch_id: str


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A client's Idempotency-Key and a digest of the request it was first used with."""

    key: str
    digest: str

    @classmethod
    def of(cls, key: str | None, *, request: bytes) -> Idempotency | None:
        """None without a key; 400 for a key that is not 1-255 visible ASCII characters."""
        if key is None:
            return None
        if not _KEY_SHAPE.fullmatch(key):
            raise errors.ValidationFailed(
                errors=[
                    errors.ErrorDetail("Idempotency-Key", "header", "must be 1-255 visible ASCII characters")
                ]
            )
        return cls(key, hashlib.sha256(request).hexdigest())


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to store: what it does, to what, and its payload."""

    kind: JobKind
    payload: bytes
    record_count: int
    target: str | None = None


def enqueue(
    uow: UnitOfWork,
    caller: Caller,
    job: NewJob,
    *,
    idempotency: Idempotency | None,
    clock: Clock,
    notify: Callable[[], None],
    key_seed: str | None = None,
) -> AcceptedJob:
    """Commit the job (or find the one this Idempotency-Key already made), then wake a worker."""
    try:
        accepted = _store(uow, caller, job, idempotency, clock, key_seed=key_seed)
    except sa.exc.IntegrityError:
        # The same key raced in from another request: its job is committed now, so answer with it.
        if idempotency is None:
            raise
        accepted = _store(uow, caller, job, idempotency, clock, key_seed=key_seed)
    notify()
    return accepted


def _store(
    uow: UnitOfWork,
    caller: Caller,
    job: NewJob,
    idempotency: Idempotency | None,
    clock: Clock,
    *,
    key_seed: str | None,
) -> AcceptedJob:
    with uow.write() as conn:
        return store_in(conn, caller, job, idempotency, clock, key_seed=key_seed)


def _earlier(conn: sa.Connection, caller: Caller, idempotency: Idempotency) -> AcceptedJob | None:
    """The job this Idempotency-Key made already; 409 while another request is storing one, 422 when
    it was made for another request."""
    if not repo.reserve_idempotency_key(conn, app_id=caller.app_id, key=idempotency.key):
        raise key_in_use()
    earlier = repo.find_by_idempotency_key(conn, app_id=caller.app_id, key=idempotency.key)
    if earlier is None:
        return None
    if earlier.request_digest != idempotency.digest:
        raise errors.IdempotencyKeyReused(errors=[_key_detail("was already used with a different request")])
    return AcceptedJob(key=earlier.key, batch_id=str(earlier.id))


def key_in_use() -> errors.IdempotencyKeyInUse:
    """The 409 for a request whose Idempotency-Key another request is still storing a job under."""
    return errors.IdempotencyKeyInUse(errors=[_key_detail("is in use by a request still being stored")])


def _key_detail(reason: str) -> errors.ErrorDetail:
    return errors.ErrorDetail("Idempotency-Key", "header", reason)


def store_in(
    conn: sa.Connection,
    caller: Caller,
    job: NewJob,
    idempotency: Idempotency | None,
    clock: Clock,
    *,
    key_seed: str | None = None,
) -> AcceptedJob:
    """Store the job in the connection's transaction, or find the one this Idempotency-Key made.

    With a sandbox's `key_seed` the key is derived from it and the batch id (contract 7.6).
    """
    if idempotency is not None:
        accepted = _earlier(conn, caller, idempotency)
        if accepted is not None:
            return accepted
    key = new_job_key()
    job_id = repo.insert_job(
        conn,
        key=key,
        org_id=caller.org_id,
        app_id=caller.app_id,
        kind=job.kind,
        payload=job.payload,
        record_count=job.record_count,
        now=clock(),
        target=job.target,
        idempotency_key=idempotency.key if idempotency else None,
        request_digest=idempotency.digest if idempotency else None,
    )
    if key_seed is not None:
        # The batch id alone would repeat on SQLite after a reset deleted the newest jobs; the
        # organization's event count never goes back, so a key is never given twice.
        events_so_far = sandbox_repo.event_count(conn, caller.org_id)
        key = seeded_job_key(key_seed, caller.org_id, events_so_far, job_id)
        repo.rekey(conn, job_id, key)
    announce_job(conn)
    return AcceptedJob(key=key, batch_id=str(job_id))


class Acceptor(Protocol):
    """Stores accepted jobs for the API (the composition root picks the implementation)."""

    async def accept(self, caller: Caller, job: NewJob, idempotency: Idempotency | None) -> AcceptedJob:
        """The job committed (or the one this Idempotency-Key made), answered once it is on disk."""

    def close(self) -> None:
        """Finish what is waiting; accept nothing more."""


class DirectAcceptor:
    """Each acceptance in a transaction of its own, through blocking calls (PostgreSQL: its commits
    are flushed together by the server itself)."""

    def __init__(
        self,
        uow: UnitOfWork,
        calls: BlockingCalls,
        *,
        clock: Clock,
        notify: Callable[[], None],
        key_seed: str | None = None,
    ) -> None:
        self._uow = uow
        self._calls = calls
        self._clock = clock
        self._notify = notify
        self._key_seed = key_seed

    async def accept(self, caller: Caller, job: NewJob, idempotency: Idempotency | None) -> AcceptedJob:
        """The job committed, or the one this Idempotency-Key made."""
        return await self._calls(
            enqueue,
            self._uow,
            caller,
            job,
            idempotency=idempotency,
            clock=self._clock,
            notify=self._notify,
            key_seed=self._key_seed,
        )

    def close(self) -> None:
        """Nothing waits here."""
