"""granian's embedded server (`serve --http-server granian`), held to the guarantees of the uvicorn
path in api/server.py: the stop signal is acted on at once, requests in flight finish within the
shutdown timeout, the lifespan runs, proxy headers are not believed, logs stay the process's JSON.

granian runs the app in this process, on this event loop: the composition root still builds one app
per process. Its embedded server is marked experimental upstream and this module reaches two of its
internals (the listening socket, the logging set-up), so pyproject.toml pins granian's minor version.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.embed import Server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class _Drain:
    """The app, counting the requests in flight so that its lifespan's shutdown waits for them.

    granian's embedded worker begins the app's shutdown as soon as it stops accepting; uvicorn first
    lets the requests in flight finish (within its graceful timeout). This restores that order.
    """

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.started = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), self._lifespan_send(send))
            return
        self.in_flight += 1
        self.idle.clear()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()

    def _lifespan_receive(self, receive: Receive) -> Callable[[], Awaitable[Message]]:
        async def received() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.drained()
            return message

        return received

    def _lifespan_send(self, send: Send) -> Send:
        async def sent(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                self.started.set()

        return sent

    async def drained(self) -> None:
        """Wait until no request is in flight, or the shutdown timeout has passed."""
        try:
            await asyncio.wait_for(self.idle.wait(), self.timeout)
        except TimeoutError:
            # As uvicorn does past its graceful timeout: what is left is cancelled with the loop.
            log.warning(
                "%d requests still in flight after %s s; stopping anyway", self.in_flight, self.timeout
            )


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

    Raises ServerFailed when granian stops on its own (the app's startup failed, or its worker ended).
    """
    drain = _Drain(app, shutdown_timeout)
    logging.getLogger(GRANIAN_LOGGER).addFilter(_DropExperimentalNotice())
    host, port = listener.getsockname()[:2]
    server = _Embedded(
        drain,
        listener,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        # HTTP/1.1 only, as uvicorn serves; no websockets (the service has none).
        http=HTTPModes.http1,
        websockets=False,
        backlog=backlog,
        http1_settings=HTTP1Settings(max_buffer_size=HEAD_BUFFER_BYTES),
        log_level=_granian_level(log_level),
        log_dictconfig=_logging_config(),
        log_access=False,  # the request layer writes the access log
    )
    stopping = asyncio.Event()
    signalled: list[int] = []
    stopper: list[asyncio.Task[None]] = []

    def early(sig: int, _frame: object) -> None:
        # Before the loop runs: the workers have not started either; the stop follows the startup.
        signalled.append(sig)
        on_stop_signal()

    previous = {sig: signal.signal(sig, early) for sig in STOP_SIGNALS}

    async def stop_once_started() -> None:
        # granian's stop before its worker is serving could be missed by it: wait for the app's
        # startup, then one turn of the loop for the worker to begin listening for the stop.
        await drain.started.wait()
        await asyncio.sleep(0)
        server.stop()  # type: ignore[no-untyped-call]

    def stop(sig: int) -> None:
        if stopping.is_set():
            return
        log.info("%s received; stopping", signal.Signals(sig).name)
        stopping.set()
        on_stop_signal()
        stopper.append(asyncio.get_running_loop().create_task(stop_once_started()))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop, sig)
        if signalled:
            stopping.set()
            stopper.append(loop.create_task(stop_once_started()))
        try:
            await server.serve()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    # As on uvicorn's path (api/server.py): what exists by now lives as long as the process.
    gc.collect()
    gc.freeze()
    try:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(main())
    except Exception as exc:
        if stopping.is_set():
            raise
        # granian raises its own error when the app's startup fails.
        raise ServerFailed(f"granian stopped: {exc}") from exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not stopping.is_set():
        raise ServerFailed("granian stopped without a stop signal (see the log above)")
