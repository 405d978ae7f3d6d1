"""What api/granian_server.py does without a running server: granian's logging set-up leaves the
process's handlers alone (tests/e2e/test_granian.py runs the server)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from pendingtx.api import granian_server

Message = dict[str, Any]


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
