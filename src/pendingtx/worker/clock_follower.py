"""A sandbox's workers' process follows the clock moves other processes make (contract 7.6)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("pendingtx.worker")


class ClockFollower:
    """Every `interval` seconds, `catch_up()`: reads the offset the sandbox keeps in its database and
    moves this process's clock to it (a companion of the worker pool, in sandbox mode only)."""

    def __init__(self, catch_up: Callable[[], bool], *, interval: float) -> None:
        self.catch_up = catch_up
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pendingtx-clock", daemon=True)

    def start(self) -> None:
        """Start following."""
        self._thread.start()

    def request_stop(self) -> None:
        """Stop at the next turn; returns at once."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for it to end."""
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether it is still running."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.catch_up():
                    log.info("sandbox clock moved by another process", extra={"event": "sandbox.clock"})
            except Exception:
                log.warning("reading the sandbox clock failed; trying again", exc_info=True)
