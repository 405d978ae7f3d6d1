"""News from other processes: PostgreSQL LISTEN on one connection, or SQLite's `PRAGMA data_version`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa

log = logging.getLogger("pendingtx.storage")

# How long one wait for notifications lasts before the stop flag is looked at again: a stop (every
# server shutdown, every test's app) then takes at most this long, for ten cheap wake-ups a second.
_WAIT_SECONDS = 0.1


class Listener:
    """LISTENs on one channel in a background thread and hands each payload to `on_payload`.

    After a lost connection (notifications may have been missed meanwhile) `on_gap` is called once
    the listener listens again, so that the receiver can look for what it missed; with `late`, also
    once it first listens (it was started after the receiver began to care).
    """

    def __init__(
        self,
        conninfo: str,
        channel: str,
        on_payload: Callable[[str], None],
        on_gap: Callable[[], None],
        *,
        retry_seconds: float,
        late: bool = False,
    ) -> None:
        self.conninfo = conninfo
        self.late = late
        self.channel = channel
        self.on_payload = on_payload
        self.on_gap = on_gap
        self.retry_seconds = retry_seconds
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pendingtx-listen-{channel}", daemon=True)

    def start(self) -> None:
        """Start listening."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening (within `_WAIT_SECONDS`, once connected)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                self._listen(gap=self.late or not first)
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning(
                    "listener on %s lost its connection (%s); retrying", self.channel, type(exc).__name__
                )
                self._stop.wait(self.retry_seconds)
            first = False

    def _listen(self, *, gap: bool) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {self.channel}")
            self.listening.set()
            if gap:
                self.on_gap()
            while not self._stop.is_set():
                for note in conn.notifies(timeout=_WAIT_SECONDS, stop_after=1):
                    self.on_payload(note.payload)


class DataVersion:
    """SQLite: whether any other connection (of this or another process) committed since the last
    look, from `PRAGMA data_version` on one connection kept for it."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._conn: Any = None
        self._version: int | None = None
        self._lock = threading.Lock()

    def changed(self) -> bool:
        """True when something was committed since the previous call (always, on the first)."""
        with self._lock:
            if self._conn is None:
                self._conn = self._engine.raw_connection()
            cursor = self._conn.driver_connection.execute("PRAGMA data_version")
            version = int(cursor.fetchone()[0])
            changed = version != self._version
            self._version = version
            return changed

    def close(self) -> None:
        """Give the connection back."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
