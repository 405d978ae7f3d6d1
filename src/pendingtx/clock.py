"""Time as a dependency: services take a clock so tests can move it instead of sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class SandboxClock:
    """Real time moved forward by an offset (sandbox mode, contract 7.6): one per process, read by the
    API and the embedded worker alike, so that advancing it expires tokens and ages jobs everywhere."""

    def __init__(self, base: Clock = utc_now, offset_seconds: float = 0.0) -> None:
        self._base = base
        self._lock = threading.Lock()
        # One attribute read per call: the lock only orders advances against each other.
        self._offset = timedelta(seconds=offset_seconds)

    @property
    def offset_seconds(self) -> float:
        """How far ahead of real time the clock is."""
        return self._offset.total_seconds()

    def __call__(self) -> datetime:
        return self._base() + self._offset

    def catch_up(self, offset_seconds: float) -> bool:
        """Move forward to `offset_seconds` (another process moved the sandbox's clock); whether it moved."""
        with self._lock:
            if offset_seconds <= self.offset_seconds:
                return False
            self._offset = timedelta(seconds=offset_seconds)
            return True

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` (never back); the new offset."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)
            return self.offset_seconds
