"""The server `pendingtx serve` runs: uvicorn (the default) or granian (api/granian_server.py),
configured for the service, with a graceful stop."""

from __future__ import annotations

import asyncio
import gc
import math
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp

HttpServer = Literal["uvicorn", "granian"]
# granian's listen backlog: uvicorn's default, so that both queue as many connections.
BACKLOG = 2048


class ServerFailed(Exception):
    """The server could not listen, or stopped without being asked to (its startup failed, or it ended)."""


def server_config(app: ASGIApp, *, host: str, port: int, log_level: str, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for serving `app`; `options` are more of uvicorn.Config's arguments.

    uvicorn's own proxy-header handling is off: by default it believes `X-Forwarded-For` from
    loopback and rewrites the client address before the service sees it. Only the proxies of
    PENDINGTX_TRUSTED_PROXIES may name the client (api/client_address.py).
    """
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, proxy_headers=False, **options)


class _Server(uvicorn.Server):
    """uvicorn's server, which also tells the workers to stop claiming the moment a stop signal arrives
    (rather than after the open connections have been served)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt the main thread while it holds a lock that stopping the
        # workers takes (a wake-up's): the event loop runs the stop request instead, right away.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # before the server has started: the workers have not either
            self._on_exit()
        else:
            loop.call_soon_threadsafe(self._on_exit)
        super().handle_exit(sig, frame)


def run_server(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    log_level: str,
    shutdown_timeout: float,
    on_stop_signal: Callable[[], None] = lambda: None,
    reuse_port: bool = False,
    http_server: HttpServer = "uvicorn",
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully and return (the process then exits 0).

    On the signal `on_stop_signal` runs at once (the workers stop claiming, and hand back a job in
    progress at its next chunk boundary); the server stops accepting connections and finishes the
    requests in flight within `shutdown_timeout` seconds. With `reuse_port` the port is shared with
    sibling processes (SO_REUSEPORT: the kernel spreads new connections among them).
    """
    if http_server == "granian":
        # Imported here: granian is an optional dependency (the `granian` extra).
        from pendingtx.api.granian_server import run_granian

        try:
            listener = listening_socket(host, port, BACKLOG, shared=reuse_port)
        except OSError as exc:
            raise ServerFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        run_granian(
            app,
            listener,
            backlog=BACKLOG,
            log_level=log_level,
            shutdown_timeout=shutdown_timeout,
            on_stop_signal=on_stop_signal,
        )
        return
    config = server_config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # the request layer writes the access log
        log_config=None,  # uvicorn's records go to the process's JSON logging like any other
        timeout_graceful_shutdown=max(1, math.ceil(shutdown_timeout)),
    )
    # What exists by now (modules, the app, compiled statements) lives as long as the process: out
    # of the collector's sight, a full collection no longer walks it, which shortens the pauses
    # that make the slowest requests slow.
    gc.collect()
    gc.freeze()
    server = _Server(config, on_exit=on_stop_signal)
    # uvicorn raises the stop signal again once it has shut down, for the previous handler to act
    # on; with the default handler the process would die of it instead of exiting with status 0.
    # A signal before uvicorn installs its own handlers also starts a graceful stop.
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in stop_signals}
    try:
        server.run(
            sockets=[listening_socket(host, port, config.backlog, shared=True)] if reuse_port else None
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def listening_socket(host: str, port: int, backlog: int, *, shared: bool) -> socket.socket:
    """A listening socket on the port; `shared`: one that sibling processes bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
