"""Running the services' blocking database calls from async handlers.

On SQLite a query is a local file read of a few microseconds, cheaper than any thread hop, so it
runs on the event loop. On PostgreSQL a call may wait on the network or on a hung server, so it
runs in a worker thread under a deadline: the event loop (and /healthz) never waits on the database,
and a call that overruns answers 503 instead of hanging.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

from pendingtx import errors

P = ParamSpec("P")
T = TypeVar("T")


class DatabaseCalls:
    """Calls blocking functions inline or in a bounded thread pool with a deadline."""

    def __init__(self, *, in_threads: bool, timeout: float, threads: int) -> None:
        self.in_threads = in_threads
        self.timeout = timeout
        self._limiter = anyio.CapacityLimiter(threads)

    async def __call__(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The function's result; 503 when it does not return within the deadline."""
        if not self.in_threads:
            return function(*args, **kwargs)
        try:
            with anyio.fail_after(self.timeout):
                return await anyio.to_thread.run_sync(
                    partial(function, *args, **kwargs), abandon_on_cancel=True, limiter=self._limiter
                )
        except TimeoutError:
            raise errors.ServiceUnavailable("The database did not answer in time") from None
