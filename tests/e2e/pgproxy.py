"""A TCP proxy in front of the shared PostgreSQL server that a test can cut, stall and restore.

The outage tests point a service at the proxy, never at the server itself, so that "the database
is down" is something the test does to its own sockets: the machine's PostgreSQL keeps running
untouched for everybody else.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

_BUFFER = 64 * 1024


def _close(sock: socket.socket) -> None:
    """Shut a socket down in both directions (which wakes a thread blocked on it) and close it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class _Gate:
    """Open: bytes flow. Closed: every pump holds what it read until the gate opens again."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self.held = 0  # how many reads have been held at the gate so far

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def wait(self) -> None:
        if self._open.is_set():
            return
        with self._lock:
            self.held += 1
        self._open.wait()


class _Link:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(
        self,
        client: socket.socket,
        upstream: socket.socket,
        on_close: Callable[[_Link], None],
        gate: _Gate,
    ) -> None:
        self.client = client
        self.upstream = upstream
        self._gate = gate
        self._on_close = on_close
        self._closed = threading.Event()
        self.threads = [
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True),
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(_BUFFER)
                if not data:
                    break
                # While stalled, bytes are held (as on a frozen server), then delivered on restore.
                self._gate.wait()
                sink.sendall(data)
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        """Drop both ends at once; the peer of each sees the connection end."""
        if self._closed.is_set():
            return
        self._closed.set()
        _close(self.client)
        _close(self.upstream)
        self._on_close(self)


class PgProxy:
    """Forwards 127.0.0.1:<port> to the upstream server until `cut()`, and again after `restore()`.

    While cut, every open connection has been closed and each new one is accepted and closed at once,
    so a client fails fast (as against a server that went away) instead of hanging. While stalled,
    connections stay open and new ones are accepted, but no byte moves either way: a server that hangs.
    """

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._cut = False
        self._gate = _Gate()
        self._stopping = False
        self.accepted = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept_loop, name="pgproxy-accept", daemon=True)
        self._thread.start()

    @property
    def held(self) -> int:
        """How many times a read was held because the proxy was stalled: a client is waiting on it."""
        return self._gate.held

    @property
    def open_links(self) -> int:
        """How many proxied connections are open now."""
        with self._lock:
            return len(self._links)

    def cut(self) -> None:
        """The database goes away: close every open connection and turn away new ones from now on."""
        with self._lock:
            self._cut = True
            links = list(self._links)
        for link in links:
            link.close()

    def stall(self) -> None:
        """The database hangs: connections stay open (and new ones are accepted) but nothing answers."""
        self._gate.close()

    def restore(self) -> None:
        """The database is back: new connections are forwarded again, and held bytes delivered."""
        with self._lock:
            self._cut = False
        self._gate.open()

    def close(self) -> None:
        """Stop listening and close every connection."""
        with self._lock:
            self._stopping = True
            self._cut = True
            links = list(self._links)
        self._gate.open()
        _close(self._listener)
        for link in links:
            link.close()
        self._thread.join(5)

    def __enter__(self) -> PgProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                if self._stopping:
                    _close(client)
                    return
                cut = self._cut
            if cut:
                self.refused += 1
                _close(client)
                continue
            self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream, self._forget, self._gate)
        with self._lock:
            admitted = not self._cut
            if admitted:
                self._links.add(link)
                self.accepted += 1
            else:
                self.refused += 1
        if admitted:
            link.start()
        else:
            # Cut while we were connecting upstream: this one must not get through either.
            link.close()
