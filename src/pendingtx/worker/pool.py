"""A process's workers: N worker threads sharing one wake-up, plus the PostgreSQL listener."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from pendingtx.worker.listener import JobListener
from pendingtx.worker.sweeper import Sweeper
from pendingtx.worker.wakeup import Wakeup
from pendingtx.worker.worker import Worker, WorkerThread

# Seconds a stopping process gives its workers to finish or hand back their jobs.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0

log = logging.getLogger("pendingtx.worker")


class Companion(Protocol):
    """Other background work run with the workers (the webhook deliverer)."""

    def start(self) -> None:
        """Start working in the background."""

    def request_stop(self) -> None:
        """Stop taking new work; returns at once."""

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for it to end."""

    @property
    def alive(self) -> bool:
        """Whether it is still running."""


class WorkerPool:
    """Starts and stops every worker thread of this process together."""

    def __init__(
        self,
        workers: Sequence[Worker],
        wakeup: Wakeup,
        listener: JobListener | None = None,
        companions: Sequence[Companion] = (),
        *,
        sweeper: Sweeper | None = None,
    ) -> None:
        """`listener` wakes the workers when other processes commit jobs (the composition root makes
        one where other processes can); `companions` start and stop with the workers; `sweeper` runs
        the retention sweep beside them."""
        self.threads: list[WorkerThread | Companion] = [WorkerThread(worker, wakeup) for worker in workers]
        self.threads.extend(companions)
        self.listener = listener
        self.sweeper = sweeper

    def start(self) -> None:
        """Start listening and working."""
        if self.listener is not None:
            self.listener.start()
        if self.sweeper is not None:
            self.sweeper.start()
        for thread in self.threads:
            thread.start()

    def request_stop(self) -> None:
        """Stop claiming, and stop each job in progress at its next chunk boundary; returns at once.

        Safe to call from a signal handler, and more than once.
        """
        for thread in self.threads:
            thread.request_stop()

    def stop(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> bool:
        """Stop the workers and wait up to `timeout` seconds in all; True when every one has stopped.

        A job in progress is handed back at its next chunk boundary (committed work stays, and any
        worker may resume it at once). A worker still busy when the time is up is left behind: its
        job is resumed after its lease runs out, or at once by a worker of this host that finds
        this process gone.
        """
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if self.listener is not None:
            self.listener.stop()
        if self.sweeper is not None:
            self.sweeper.stop(max(deadline - time.monotonic(), 0.0))
        busy = sum(thread.alive for thread in self.threads)
        if busy:
            log.warning(
                "%d worker(s) still busy after %.1f s; leaving their jobs to be resumed", busy, timeout
            )
        return not busy
