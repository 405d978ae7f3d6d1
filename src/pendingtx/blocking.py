"""Running blocking calls from coroutines: inline on the event loop, or in threads under a deadline.

On SQLite a query is a local file read of a few microseconds, cheaper than any thread hop, so it
runs on the event loop (InlineCalls). On PostgreSQL a call may wait on the network or on a hung
server, so it runs in a thread under a deadline (ThreadCalls): the event loop (and /healthz) never
waits on the database, and a call that overruns answers 503 instead of hanging. The composition
root chooses one per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, ParamSpec, Protocol, TypeVar

from pendingtx import errors

P = ParamSpec("P")
T = TypeVar("T")

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # its caller gave up at the deadline
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Threads:
    """At most `size` daemon threads taking calls from one queue, started as calls wait for them.

    A lighter hop than anyio's to_thread (a C queue, no capacity limiter or cancel scope per call),
    which the status GET pays on every request. Daemon threads: one stuck on a hung server never
    holds up the process's exit.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._idle = 0

    def submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # As anyio does: the call sees the request's context variables (the caller note among them).
        self._calls.put((loop, future, contextvars.copy_context(), function))
        if self._calls.qsize() > self._idle and self._started < self._size:
            with self._lock:
                if self._started < self._size:
                    self._started += 1
                    threading.Thread(target=self._work, name="pendingtx-db", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            loop, future, context, function = self._calls.get()
            with self._lock:
                self._idle -= 1
            if future.cancelled():  # abandoned at its deadline before a thread was free
                continue
            try:
                result = context.run(function)
            except BaseException as exc:  # handed to the awaiting request, which raises it
                self._hand_back(loop, future, None, exc)
            else:
                self._hand_back(loop, future, result, None)

    @staticmethod
    def _hand_back(
        loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
    ) -> None:
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, future, result, error)


class BlockingCalls(Protocol):
    """How a coroutine on the event loop runs a blocking call (a database query, a password check)."""

    async def __call__(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The function's result."""

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """The awaitable's result (a read awaited on the event loop)."""


class InlineCalls:
    """Runs each call on the event loop itself: for SQLite, whose reads are local and cost less than
    any thread hop, and whose writes queue on one lock (UnitOfWork) for a moment at most."""

    async def __call__(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The function's result, computed here."""
        return function(*args, **kwargs)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """The awaitable's result."""
        return await awaitable


class ThreadCalls:
    """Runs each call in a bounded set of threads under a deadline: for a database across a network,
    where a call may hang; one that overruns answers 503 instead, and the event loop never waits."""

    def __init__(self, *, timeout: float, threads: int) -> None:
        self.timeout = timeout
        self._threads = _Threads(threads)

    async def __call__(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The function's result; 503 when it does not return within the deadline."""
        try:
            async with asyncio.timeout(self.timeout):
                # A call that overruns is abandoned: its thread finishes it, and nobody waits.
                return await self._threads.submit(partial(function, *args, **kwargs))
        except TimeoutError:
            raise errors.ServiceUnavailable("The database did not answer in time") from None

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """The awaitable's result (a read on the event loop); 503 when it does not come in time.

        A read that overruns is cancelled but not waited for: psycopg then spends up to seconds
        asking a possibly hung server to cancel the query, which must not hold the answer up.
        """
        read = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait((read,), timeout=self.timeout)
        except asyncio.CancelledError:  # the request itself was abandoned
            read.cancel()
            raise
        if not done:
            read.cancel()
            read.add_done_callback(_retrieve)
            raise errors.ServiceUnavailable("The database did not answer in time")
        return read.result()


def _retrieve(task: asyncio.Future[Any]) -> None:
    # An abandoned read's error has nobody to go to; retrieving it keeps asyncio from logging it.
    if not task.cancelled():
        task.exception()
