"""A process's workers: N worker threads sharing one wake-up, plus the PostgreSQL listener."""

from __future__ import annotations

from pendingtx.bootstrap import Runtime
from pendingtx.storage.engine import libpq_conninfo
from pendingtx.worker.listener import JobListener
from pendingtx.worker.worker import WorkerThread


class WorkerPool:
    """Starts and stops every worker thread of this process together."""

    def __init__(self, runtime: Runtime, *, concurrency: int = 1) -> None:
        self.threads = [WorkerThread(runtime.new_worker(), runtime.wakeup) for _ in range(concurrency)]
        self.listener: JobListener | None = None
        if runtime.engine.dialect.name == "postgresql":
            self.listener = JobListener(
                libpq_conninfo(runtime.settings.database_url),
                runtime.wakeup,
                retry_seconds=runtime.settings.worker_poll_seconds,
            )

    def start(self) -> None:
        """Start listening and working."""
        if self.listener is not None:
            self.listener.start()
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, let current jobs reach their next commit, and wait for the threads."""
        for thread in self.threads:
            thread.request_stop()
        for thread in self.threads:
            thread.stop(timeout)
        if self.listener is not None:
            self.listener.stop()
