"""How submitters wake workers in the same process without a fixed polling delay."""

from __future__ import annotations

import threading


class Wakeup:
    """A level-triggered signal: `notify` after a commit, `wait` in the worker loop."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
        """Say that there may be new work."""
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Block until notified or `timeout` passes; consumes the notification."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken
