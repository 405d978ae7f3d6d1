"""PostgreSQL LISTEN/NOTIFY: wakes this process's workers when any process commits a job."""

from __future__ import annotations

import logging
import threading

import psycopg

from pendingtx.storage.claim import CHANNEL
from pendingtx.worker.wakeup import Wakeup

log = logging.getLogger("pendingtx.worker")


class JobListener:
    """Listens on the jobs channel and turns each notification into a local wake-up.

    A lost notification (or a lost connection) only delays a job until the workers' polling fallback.
    """

    def __init__(self, conninfo: str, wakeup: Wakeup, *, retry_seconds: float) -> None:
        self.conninfo = conninfo
        self.wakeup = wakeup
        self.retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pendingtx-listener", daemon=True)
        self.listening = threading.Event()

    def start(self) -> None:
        """Start listening in a background thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening (within about a second)."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning("job listener lost its connection (%s); retrying", type(exc).__name__)
                self.wakeup.notify()  # let the workers poll while we are deaf
                self._stop.wait(self.retry_seconds)

    def _listen(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    self.wakeup.notify()
