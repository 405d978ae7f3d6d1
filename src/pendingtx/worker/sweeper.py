"""The periodic work of a workers' process: the retention sweep, in a thread of its own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("pendingtx.worker")


class Sweeper:
    """Runs `sweep` at once and then every `interval` seconds until stopped; a failure is logged and
    the sweep tried again at its next turn."""

    def __init__(self, sweep: Callable[[], int], *, interval: float) -> None:
        self.sweep = sweep
        self.interval = interval
        self._stop = threading.Event()
        self._woken = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pendingtx-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping in the background."""
        self._thread.start()

    def wake(self) -> None:
        """Sweep now rather than at the next turn (a sandbox's clock has moved)."""
        self._woken.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch in progress (each batch is a short transaction)."""
        self._stop.set()
        self._woken.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deleted = self.sweep()
            except Exception:
                log.exception("retention sweep failed; trying again at its next turn")
            else:
                if deleted:
                    log.info("retention sweep deleted %s job(s)", deleted, extra={"event": "jobs.swept"})
            self._woken.wait(self.interval)
            self._woken.clear()
