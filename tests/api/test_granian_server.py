"""The pieces of api/granian_server.py that need no running server: the lifespan's shutdown waits for
the requests in flight, and granian's logging set-up leaves the process's handlers alone."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from pendingtx.api import granian_server

Message = dict[str, Any]


def test_the_lifespan_shutdown_waits_for_the_requests_in_flight() -> None:
    seen: list[str] = []
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                seen.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await release.wait()
        seen.append("request done")

    async def scenario() -> None:
        drain = granian_server._Drain(app, timeout=30)
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        lifespan = asyncio.create_task(drain({"type": "lifespan"}, inbox.get, send))
        await inbox.put({"type": "lifespan.startup"})
        await asyncio.wait_for(drain.started.wait(), 5)
        request = asyncio.create_task(drain({"type": "http"}, inbox.get, send))
        await asyncio.sleep(0)  # the request is in the app
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.sleep(0)
        assert seen == ["lifespan.startup"]  # the shutdown is held back
        release.set()
        await asyncio.wait_for(asyncio.gather(request, lifespan), 5)
        assert seen == ["lifespan.startup", "request done", "lifespan.shutdown"]
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    asyncio.run(scenario())


def test_a_request_past_the_timeout_does_not_hold_the_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        drain = granian_server._Drain(lambda *_: asyncio.Event().wait(), timeout=0.01)
        request = asyncio.create_task(drain({"type": "http"}, None, None))
        await asyncio.sleep(0)
        await drain.drained()
        assert drain.in_flight == 1
        request.cancel()

    asyncio.run(scenario())
    assert "1 requests still in flight" in caplog.text


class _Watched(logging.Handler):
    closed = False

    def emit(self, record: logging.LogRecord) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        super().close()


@pytest.fixture
def watched_root() -> Iterator[_Watched]:
    root = logging.getLogger()
    handler = _Watched()
    root.addHandler(handler)
    granian_logger = logging.getLogger(granian_server.GRANIAN_LOGGER)
    saved = (granian_logger.level, granian_logger.propagate, list(granian_logger.handlers))
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        granian_logger.setLevel(saved[0])
        granian_logger.propagate = saved[1]
        granian_logger.handlers[:] = saved[2]


def test_granian_leaves_the_process_logging_alone(watched_root: _Watched) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        granian_server._Embedded(
            lambda *_: None,
            listener,
            address="127.0.0.1",
            port=listener.getsockname()[1],
            log_dictconfig=granian_server._logging_config(),
        )
    assert not watched_root.closed
    granian_logger = logging.getLogger(granian_server.GRANIAN_LOGGER)
    assert granian_logger.propagate
    assert not granian_logger.handlers
