"""granian's embedded server (`serve --http-server granian`), held to the guarantees of the uvicorn
path in api/server.py: the stop signal is acted on at once, requests in flight finish within the
shutdown timeout and before the app's shutdown, proxy headers are not believed (granian has no such
option), logs stay the process's JSON lines.

granian runs the app in this process, on this event loop: the composition root still builds one app
per process. Its embedded server is marked experimental upstream and this module reaches two of its
internals (the listening socket, the logging set-up), so pyproject.toml pins granian's minor version.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from granian._granian import SocketHolder
from granian.asgi import LifespanProtocol
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server
from starlette.types import ASGIApp

from pendingtx.api.server import ServerFailed

log = logging.getLogger("pendingtx.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# granian's records, which it logs as `_granian` (its Rust side too).
GRANIAN_LOGGER = "_granian"
# Said at every start; the version is pinned and the embedded path is what the e2e tests run.
_EXPERIMENTAL = "Embedded server is experimental!"
# Enough for the largest request head the request layer judges (api/limits.py): a longer one is
# still answered in the contract's format, not cut off by the server.
HEAD_BUFFER_BYTES = 8192 + 4096 * 100


class _Embedded(Server):
    """granian's embedded server on a socket bound here, as uvicorn's path binds it.

    granian would bind its own with SO_REUSEPORT even for a lone process, which would then share
    the port silently with an older server left running instead of failing to start.
    """

    def __init__(self, target: ASGIApp, listener: socket.socket, **options: Any) -> None:
        super().__init__(target, **options)
        self._listener = listener

    def _init_shared_socket(self) -> None:
        # granian's listener owns the descriptor from here on. (Its stub omits the constructor.)
        holder: Any = SocketHolder(self._listener.detach(), False, self.backlog)  # type: ignore[call-arg]
        self._shd = holder
        self._sfd = holder.get_fd()


class _DropExperimentalNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _EXPERIMENTAL


def _logging_config() -> dict[str, Any]:
    # Incremental: granian's own dictConfig would otherwise close every handler of the process (the
    # JSON lines handler among them) and print its records as plain text on standard output.
    return {
        "version": 1,
        "incremental": True,
        "formatters": {},
        "handlers": {},
        "loggers": {GRANIAN_LOGGER: {"propagate": True}, "granian.access": {"propagate": False}},
    }


def _granian_level(level: str) -> LogLevels:
    return LogLevels.debug if level == "trace" else LogLevels(level)


def _new_loop() -> asyncio.AbstractEventLoop:
    # uvloop when installed (it is with uvicorn[standard]), as uvicorn's "auto" loop chooses.
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_granian(
    app: ASGIApp,
    listener: socket.socket,
    *,
    backlog: int,
    log_level: str,
    shutdown_timeout: float,
    on_stop_signal: Callable[[], None],
) -> None:
    """Serve `app` on `listener` until SIGTERM or SIGINT, then stop gracefully and return.

    The app's lifespan runs here rather than in granian's worker: granian waits for every request
    in flight before it lets its worker end, without a bound, and the app's shutdown must come
    after them but within `shutdown_timeout`. Raises ServerFailed when the app's startup fails or
    granian stops on its own.
    """
    logging.getLogger(GRANIAN_LOGGER).addFilter(_DropExperimentalNotice())
    host, port = listener.getsockname()[:2]
    server = _Embedded(
        app,
        listener,
        address=host,
        port=port,
        interface=Interfaces.ASGINL,
        # HTTP/1.1 only, as uvicorn serves; no websockets (the service has none).
        http=HTTPModes.http1,
        websockets=False,
        backlog=backlog,
        http1_settings=HTTP1Settings(max_buffer_size=HEAD_BUFFER_BYTES),
        log_level=_granian_level(log_level),
        log_dictconfig=_logging_config(),
        log_access=False,  # the request layer writes the access log
    )
    signalled: list[int] = []

    def early(sig: int, _frame: object) -> None:
        # Before the loop runs: the workers have not started either; the stop follows the startup.
        signalled.append(sig)

    previous = {sig: signal.signal(sig, early) for sig in STOP_SIGNALS}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def stop(sig: int) -> None:
            if stopping.is_set():
                return
            log.info("%s received; stopping", signal.Signals(sig).name)
            stopping.set()
            on_stop_signal()
            server.stop()  # type: ignore[no-untyped-call]

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop, sig)
        lifespan = LifespanProtocol(app)  # type: ignore[no-untyped-call]
        await lifespan.startup()  # type: ignore[no-untyped-call]
        if lifespan.interrupt:
            raise ServerFailed("the app's startup failed") from lifespan.exc
        try:
            serving = loop.create_task(server.serve())
            if signalled:
                stop(signalled[0])
            stopped = loop.create_task(stopping.wait())
            await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not stopping.is_set():
                serving.result()
                raise ServerFailed("granian stopped without a stop signal (see the log above)")
            await _finished(serving, shutdown_timeout)
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
            await lifespan.shutdown()  # type: ignore[no-untyped-call]

    # As on uvicorn's path (api/server.py): what exists by now lives as long as the process.
    gc.collect()
    gc.freeze()
    try:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(main())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # uvicorn's last line, which operators and tests look for, on either server.
    log.info("Finished server process [%d]", os.getpid())


async def _finished(serving: asyncio.Task[None], timeout: float) -> None:
    """Wait for granian to answer the requests in flight; past `timeout`, stop waiting (as uvicorn
    does past its graceful timeout: what is left is cancelled with the loop)."""
    try:
        await asyncio.wait_for(asyncio.shield(serving), timeout)
    except TimeoutError:
        log.warning("requests still in flight after %s s; stopping anyway", timeout)
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
