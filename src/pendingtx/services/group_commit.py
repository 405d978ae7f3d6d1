"""Acceptances committed together: concurrent submissions share one transaction and one flush to disk.

Every acceptance is on disk before its 202, and on SQLite the flush costs several times the insert
and, run inline, would hold the event loop for its whole length. One writer thread instead takes
every acceptance waiting at that moment, stores them in one transaction and flushes once; each
submitter gets its own answer, or its own error, once that commit has returned. A request whose
Idempotency-Key is that of one still waiting or being stored is answered 409 at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import sqlalchemy as sa

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.services import enqueue as storing
from pendingtx.services.authentication import Caller
from pendingtx.services.enqueue import AcceptedJob, Idempotency, NewJob
from pendingtx.storage.unit_of_work import UnitOfWork

log = logging.getLogger("pendingtx.api")


@dataclass(frozen=True, slots=True)
class _Waiting:
    caller: Caller
    job: NewJob
    idempotency: Idempotency | None
    answer: Future[AcceptedJob]

    @property
    def held(self) -> tuple[int, str] | None:
        """The (application, Idempotency-Key) no other acceptance may take until this one is answered."""
        return None if self.idempotency is None else (self.caller.app_id, self.idempotency.key)


class GroupCommit:
    """A writer thread that stores the jobs submitted to it in shared transactions."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        clock: Clock,
        notify: Callable[[], None],
        max_group: int = 256,
        key_seed: str | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        # A sandbox's seed of job keys (contract 7.6); None: random keys.
        self._key_seed = key_seed
        self._notify = notify
        self._max_group = max_group
        self._waiting: list[_Waiting] = []
        # The (application, Idempotency-Key) of every acceptance not answered yet.
        self._keys: set[tuple[int, str]] = set()
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, caller: Caller, job: NewJob, idempotency: Idempotency | None) -> Future[AcceptedJob]:
        """The job's acceptance, answered once it is committed (or with the error that stopped it)."""
        waiting = _Waiting(caller, job, idempotency, Future())
        held = waiting.held
        with self._changed:
            if self._closed:
                raise errors.ServiceUnavailable("The service is stopping")
            if held is not None:
                if held in self._keys:
                    raise storing.key_in_use()
                self._keys.add(held)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pendingtx-acceptances", daemon=True)
                self._thread.start()
            self._waiting.append(waiting)
            self._changed.notify()
        if held is not None:

            def cancelled(answer: Future[AcceptedJob]) -> None:
                if answer.cancelled():  # it will never be stored: the key is free at once
                    self._release(held)

            waiting.answer.add_done_callback(cancelled)
        return waiting.answer

    async def accept(self, caller: Caller, job: NewJob, idempotency: Idempotency | None) -> AcceptedJob:
        """The job's acceptance, awaited until the writer thread has committed it."""
        return await asyncio.wrap_future(self.submit(caller, job, idempotency))

    def _release(self, held: tuple[int, str] | None) -> None:
        if held is not None:
            with self._changed:
                self._keys.discard(held)

    def _answer(self, waiting: _Waiting, outcome: AcceptedJob | BaseException) -> None:
        # The key is free before the answer is: a retry the moment it arrives finds it stored.
        self._release(waiting.held)
        if isinstance(outcome, AcceptedJob):
            waiting.answer.set_result(outcome)
        else:
            waiting.answer.set_exception(outcome)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is waiting, then stop the writer thread."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        with self._uow.keeping_connections():
            self._serve()

    def _serve(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closed:
                    self._changed.wait()
                if not self._waiting:
                    return
                taken = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
            # A request cancelled while waiting (its server gave up on it) is dropped: no answer
            # was sent, so nothing may be stored for it. The rest can no longer be cancelled.
            group = [w for w in taken if w.answer.set_running_or_notify_cancel()]
            if not group:
                continue
            try:
                self._commit(group)
            except BaseException as exc:
                # Never leave a submitter waiting, nor this thread dead for the next ones.
                log.exception("storing a group of acceptances failed")
                for waiting in group:
                    if not waiting.answer.done():
                        self._answer(waiting, exc)

    def _commit(self, group: list[_Waiting]) -> None:
        results: list[AcceptedJob | errors.ApiError] = []
        try:
            with self._uow.write() as conn:
                for waiting in group:
                    try:
                        results.append(
                            storing.store_in(
                                conn,
                                waiting.caller,
                                waiting.job,
                                waiting.idempotency,
                                self._clock,
                                key_seed=self._key_seed,
                            )
                        )
                    except errors.ApiError as exc:  # a refusal that wrote nothing: the others go on
                        results.append(exc)
        except sa.exc.OperationalError as exc:
            # The database is unavailable or locked by another process: so it is for every one of
            # them, and each is answered so at once (503) rather than after a retry of its own.
            for waiting in group:
                self._answer(waiting, exc)
            return
        except Exception:
            # The shared transaction failed (a race on an Idempotency-Key with another process, a
            # fault in one request): each is tried alone, so one's error is nobody else's.
            log.warning("a group of %d acceptances failed together; storing each alone", len(group))
            for waiting in group:
                self._alone(waiting)
            return
        self._notify()
        for waiting, result in zip(group, results, strict=True):
            self._answer(waiting, result)

    def _alone(self, waiting: _Waiting) -> None:
        try:
            accepted = storing.enqueue(
                self._uow,
                waiting.caller,
                waiting.job,
                idempotency=waiting.idempotency,
                clock=self._clock,
                notify=self._notify,
                key_seed=self._key_seed,
            )
        except Exception as exc:  # answered to its own request, which reports it
            self._answer(waiting, exc)
        else:
            self._answer(waiting, accepted)
