"""News between the processes of one `pendingtx serve --processes N` on SQLite, as NOTIFY is on PostgreSQL.

Each process binds a Unix datagram socket in a directory the parent made; a commit is told to the
others with one non-blocking `sendto` each: "jobs" to the process with the worker after an
acceptance, `<org id>:<sequence>` to every other process after a commit that recorded events. A
datagram that cannot be sent (a sibling starting, stopping, or behind) is dropped: the worker's
poll and the event bus's data-version check still find the commit, only later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger("pendingtx")

JOBS = b"jobs"
# How long the receiving thread waits before it looks at its stop flag again.
_WAIT_SECONDS = 0.2
_MAX_DATAGRAM = 4096


@dataclass(frozen=True)
class Place:
    """Where one process of N stands: its index, how many there are, which one runs the worker."""

    directory: str
    index: int
    count: int
    worker_index: int | None = 0

    @property
    def runs_worker(self) -> bool:
        """Whether this process runs the embedded worker."""
        return self.index == self.worker_index

    def path(self, index: int) -> str:
        """The socket of the process with this index."""
        return os.path.join(self.directory, f"{index}.sock")


class Siblings:
    """This process's end of the channel: sends news to the others and receives theirs."""

    def __init__(self, place: Place) -> None:
        self.place = place
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(place.path(place.index))  # left by a process of the same index that died
        self._socket.bind(place.path(place.index))
        self._socket.settimeout(_WAIT_SECONDS)
        self._others = [place.path(i) for i in range(place.count) if i != place.index]
        self._worker = None if place.worker_index is None else place.path(place.worker_index)

    def jobs_accepted(self) -> None:
        """Tell the process with the worker that jobs were committed (nothing when it is this one)."""
        if self._worker is not None and not self.place.runs_worker:
            self._send(JOBS, self._worker)

    def events_recorded(self, recorded: Mapping[int, int]) -> None:
        """Observes `UnitOfWork.event_observers`: tell the others each organization's last sequence."""
        for org_id, sequence in recorded.items():
            payload = f"{org_id}:{sequence}".encode()
            for path in self._others:
                self._send(payload, path)

    def _send(self, payload: bytes, path: str) -> None:
        # A full queue, or a sibling not bound yet or gone: its poll or data-version check catches up.
        with contextlib.suppress(OSError):
            self._socket.sendto(payload, socket.MSG_DONTWAIT, path)

    def receiver(self, on_jobs: Callable[[], None], on_events: Callable[[str], None]) -> Receiver:
        """A thread that hands each datagram received to `on_jobs` or `on_events` (as a NOTIFY payload)."""
        return Receiver(self._socket, on_jobs, on_events)

    def close(self) -> None:
        """Stop receiving and remove this process's socket."""
        self._socket.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.place.path(self.place.index))


class Receiver:
    """Receives the siblings' datagrams in a thread; an event bus feed (services.event_bus.Feed)."""

    def __init__(
        self, sock: socket.socket, on_jobs: Callable[[], None], on_events: Callable[[str], None]
    ) -> None:
        self._socket = sock
        self._on_jobs = on_jobs
        self._on_events = on_events
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start receiving."""
        self._stopped.clear()
        self._thread = threading.Thread(target=self._receive, name="pendingtx-siblings", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop receiving; blocks up to `timeout` seconds."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _receive(self) -> None:
        while not self._stopped.is_set():
            try:
                payload = self._socket.recv(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            try:
                if payload == JOBS:
                    self._on_jobs()
                else:
                    self._on_events(payload.decode("ascii", "replace"))
            except Exception:
                log.warning("siblings: could not hand on %r", payload, exc_info=True)
