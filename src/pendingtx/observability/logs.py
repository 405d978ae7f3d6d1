"""Structured logs: every record of the server and worker processes as one JSON object per line.

A line always has `ts` (UTC, milliseconds), `level`, `logger` and `msg`; records logged with
`extra=fields(...)` add their fields, and a record with an exception adds `exc` (the traceback).
Credentials never belong in a log; as a second line of defence, anything shaped like a Bearer or
Basic credential or a `secret=`/`token=` pair in a message or traceback is replaced by `[redacted]`,
and the password of a URL (a database URL's) by `***`.

The server writes a line per request, so lines are written in batches rather than one system call
each: when 64 KiB are waiting, at once for a record at WARNING or above, at least every 0.1 s, and
when the process exits. A process killed outright (SIGKILL) may lose its last 0.1 s of INFO lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

import msgspec

from pendingtx.config import mask_credentials
from pendingtx.observability.caller import CallerNote

ACCESS_LOGGER = "pendingtx.access"
LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

# A Bearer token or Basic credentials: the scheme, then at least 16 characters of token or base64.
_AUTH_VALUE = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/-]{16,}=*")
# `secret=...`, `"access_token": "..."`, `token: ...` and the like.
_SECRET_PAIR = re.compile(
    r"(?i)\b(access_token|client_secret|app_?secret|secret|token|password|authorization)"
    r"(\"?\s*[:=]\s*\"?)[^\s\"'&,;}]+"
)


def redact(text: str) -> str:
    """The text with anything shaped like a credential replaced by `[redacted]`."""
    text = mask_credentials(_AUTH_VALUE.sub(r"\1\2[redacted]", text))
    return _SECRET_PAIR.sub(r"\1\2[redacted]", text)


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call: these fields go into the record's JSON line (values must be JSON)."""
    return {"fields": values}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder()
        # (whole millisecond, its text): under load many lines share a millisecond.
        self._stamp: tuple[int, str] = (-1, "")

    def timestamp(self, created: float) -> str:
        """`created` (seconds since the epoch) as ISO 8601 UTC with milliseconds."""
        millisecond = int(created * 1000)
        stamp = self._stamp
        if stamp[0] != millisecond:
            second, fraction = divmod(millisecond, 1000)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            stamp = (millisecond, f"{text}.{fraction:03d}Z")
            self._stamp = stamp
        return stamp[1]

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record's JSON object, as a dict."""
        message = record.getMessage()
        if record.name != ACCESS_LOGGER:  # access lines are built from known-safe values only
            message = redact(message)
        entry: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": message,
        }
        extra = record.__dict__.get("fields")
        if extra:
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return entry

    def encode(self, entry: dict[str, Any]) -> bytes:
        """A JSON object as bytes, without a line break."""
        return self._encoder.encode(entry)

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object, without a line break."""
        return self.encode(self.entry(record)).decode()


class JsonLinesHandler(logging.Handler):
    """Writes records as JSON lines to a stream, in batches (see the module's description).

    Lines wait as dicts and are encoded together when a batch is written (one C call for the batch,
    not one per line), so that queueing a line costs little more than appending to a list.
    """

    def __init__(self, stream: IO[str], *, interval: float = 0.1, batch_lines: int = 512) -> None:
        super().__init__()
        self.json = JsonFormatter()
        self.setFormatter(self.json)
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None  # an in-memory stream
        # Any thread appends without a lock (deque.append is atomic); entries are taken out only
        # under the handler's lock, by whoever writes a batch.
        self._pending: deque[dict[str, Any]] = deque()
        self._batch_lines = batch_lines
        # Any value JSON cannot carry is written as its str() rather than losing the batch.
        self._encoder = msgspec.json.Encoder(enc_hook=str)
        # Not `_closed`: logging.Handler keeps a flag of that name and sets it on close.
        self._stopped = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_every, args=(interval,), name="pendingtx-log-flush", daemon=True
        )
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record's line (called by `handle`, under the handler's lock)."""
        try:
            self._add(self.json.entry(record), urgent=record.levelno >= logging.WARNING)
        except Exception:
            self.handleError(record)

    def write_entry(self, entry: dict[str, Any]) -> None:
        """Queue a line built by the caller (the access log's fast path), in order with the records.

        The entry must not change afterwards: it is encoded when its batch is written.
        """
        pending = self._pending
        pending.append(entry)
        if len(pending) >= self._batch_lines:
            self.flush()

    def _add(self, entry: dict[str, Any], *, urgent: bool) -> None:
        pending = self._pending
        pending.append(entry)
        if urgent or len(pending) >= self._batch_lines:
            self._write_pending()

    def _write_pending(self) -> None:
        pending = self._pending
        if not pending:
            return
        # The entries queued so far; any appended meanwhile wait for the next batch.
        batch = [pending.popleft() for _ in range(len(pending))]
        data = self._encoder.encode_lines(batch)
        if self._fd is None:
            self._stream.write(data.decode())
            self._stream.flush()
            return
        self._stream.flush()  # anything written to the stream directly goes first
        for piece in _whole_lines(data):
            view = memoryview(piece)
            while view:
                view = view[os.write(self._fd, view) :]

    def flush(self) -> None:
        """Write every queued line now."""
        # A stream that is gone loses its batch: there is nowhere left to say so.
        with self.lock, contextlib.suppress(OSError):  # type: ignore[union-attr]  # made by Handler.__init__
            self._write_pending()

    def _flush_every(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            self.flush()

    def close(self) -> None:
        """Write what is queued and stop the background flushing."""
        self._stopped.set()
        self.flush()
        super().close()


def _whole_lines(data: bytes) -> Iterator[bytes]:
    """The batch in pieces of whole lines of at most PIPE_BUF bytes where lines allow: a pipe writes
    such a piece in one go, so the processes of `serve --processes N` never interleave within a line."""
    start, size = 0, len(data)
    while size - start > select.PIPE_BUF:
        end = data.rfind(b"\n", start, start + select.PIPE_BUF)
        if end < 0:  # one line longer than that: on its own
            end = data.find(b"\n", start + select.PIPE_BUF)
            if end < 0:
                break
        yield data[start : end + 1]
        start = end + 1
    if start < size:
        yield data[start:]


def configure_logging(level: str, *, stream: IO[str] | None = None) -> JsonLinesHandler:
    """Send every record of the process, as JSON lines, to `stream` (standard error by default).

    `level` is one of LEVELS (`trace` is uvicorn's, below `debug`). Raises ValueError for an unknown
    level. Returns the handler, for the access log's fast path (AccessLog(sink=...)).
    """
    name = level.lower()
    if name not in LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LEVELS)}")
    handler = JsonLinesHandler(stream or sys.stderr)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel("DEBUG" if name == "trace" else name.upper())
    # The JSON lines show none of these, and collecting them costs a few microseconds per record.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    return handler


class AccessLog:
    """Writes the one line per request: method, route template, status, duration, tracking id, caller.

    With a `sink` (the handler `configure_logging` installed) a line goes straight into that
    handler's batch, skipping the logging machinery (which costs several times more per line);
    without one it is an ordinary record of the `pendingtx.access` logger. Either way the logger's
    level decides: nothing is built when INFO is off for it.
    """

    def __init__(self, logger: logging.Logger | None = None, *, sink: JsonLinesHandler | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        self.sink = sink

    def request(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        tracking_id: str,
        *,
        caller: CallerNote | None = None,
    ) -> None:
        """Log one served request at INFO."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        sink = self.sink
        values: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": int(seconds * 1_000_000) / 1000,
            "trackingId": tracking_id,
        }
        if caller is not None and caller.app is not None:
            values["app"] = caller.app
            values["org"] = caller.org
        if sink is not None:
            line = {
                "ts": sink.json.timestamp(time.time()),
                "level": "INFO",
                "logger": ACCESS_LOGGER,
                "msg": "request",
                **values,
            }
            sink.write_entry(line)
            return
        # An ordinary record, built directly rather than through logger.info: no caller lookup.
        record = logging.LogRecord(logger.name, logging.INFO, "", 0, "request", None, None)
        record.__dict__["fields"] = values
        logger.handle(record)
