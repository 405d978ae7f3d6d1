"""The event stream (`GET /v1/events` as server-sent events), without I/O: both clients open the
requests this asks for and feed it the answer's lines; it decodes events and decides when to resume
(with `Last-Event-ID`, after the last event seen) and when to stop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx
import msgspec

from pendingtx_client._core import Pacing
from pendingtx_client._errors import ApiError, ConnectionFailed, error_from_response, unexpected
from pendingtx_client._models import JobState
from pendingtx_client._retry import RETRYABLE_TRANSPORT_ERRORS, retry_after

EVENTS_PATH = "/v1/events"
EVENT_STREAM = "text/event-stream"
COMPLETED = "job.completed"
# The server sends a comment at least every 15 s: a silent minute means the connection is lost.
READ_TIMEOUT = httpx.Timeout(30.0, read=60.0)


@dataclass(frozen=True, slots=True)
class Event:
    """One job transition of the organization's event log."""

    id: str
    sequence: int
    type: str
    created_at: datetime
    key: str
    batch_id: str
    status: JobState
    record_count: int
    processed_count: int
    failed_count: int


class _EventData(msgspec.Struct, rename="camel"):
    job_status_query_key: str
    batch_id: str
    status: str
    record_count: int
    processed_count: int
    failed_count: int


class _EventBody(msgspec.Struct, rename="camel"):
    id: str
    sequence: int
    type: str
    created_at: datetime
    data: _EventData


def decode_event(data: str, response: httpx.Response) -> Event:
    """The event of one SSE `data:` field of the response."""
    try:
        body = msgspec.json.decode(data, type=_EventBody)
    except msgspec.ValidationError as exc:
        raise unexpected(response, "an event", exc) from None
    except msgspec.DecodeError as exc:
        raise unexpected(response, "an event", exc) from None
    d = body.data
    return Event(
        id=body.id,
        sequence=body.sequence,
        type=body.type,
        created_at=body.created_at,
        key=d.job_status_query_key,
        batch_id=d.batch_id,
        status=JobState(d.status),
        record_count=d.record_count,
        processed_count=d.processed_count,
        failed_count=d.failed_count,
    )


class EventStream:
    """One iteration of `events()`: the next request, the decoding of its lines, and when to stop.

    A stream narrowed to one job (`key`) ends after that job's `job.completed`; any other goes on
    until the caller stops iterating. A dropped connection or a stream the server ended (it stops)
    is opened again after the last event seen; `max_attempts` failures in a row without an event
    raise the last one.
    """

    def __init__(self, pacing: Pacing, *, after: int, key: str | None, kind: str | None) -> None:
        self.pacing = pacing
        self.last = after
        self.key = key
        self.kind = kind
        self.finished = False
        self._failures = 0
        self._data: list[str] = []
        self._response: httpx.Response | None = None

    def request(self) -> tuple[dict[str, str], dict[str, str]]:
        """The query parameters and headers of the next request."""
        params = {"after": str(self.last)}
        if self.key is not None:
            params["key"] = self.key
        if self.kind is not None:
            params["type"] = self.kind
        headers = {"Accept": EVENT_STREAM, "Last-Event-ID": str(self.last)}
        return params, headers

    def refused(self, response: httpx.Response) -> float:
        """An answer other than the stream (its body read): the pause before trying again, or raises."""
        error = error_from_response(response)
        if not error.transient:
            raise error
        return self._pause(error, retry_after(response))

    def opened(self, response: httpx.Response) -> None:
        """The stream's answer arrived; a wrong content type raises."""
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith(EVENT_STREAM):
            raise unexpected(response, "an event stream", f"Content-Type {content_type!r}")
        self._data.clear()
        self._response = response

    def line(self, text: str) -> Event | None:
        """Feed one line of the stream; the event it completes, if any."""
        if text == "":
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            assert self._response is not None
            event = decode_event(data, self._response)
            self.last = event.sequence
            self._failures = 0
            if self.key is not None and event.type == COMPLETED:
                self.finished = True
            return event
        if text.startswith(":"):
            return None  # a heartbeat
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        return None  # `id` and `event` repeat what the data says

    def ended(self) -> float | None:
        """The server ended the stream: the pause before resuming, or None when the stream is over."""
        if self.finished:
            return None
        return self.pacing.policy.delay(max(1, self._failures), None, self.pacing.random)

    def failed(self, error: httpx.TransportError) -> float:
        """The connection failed: the pause before resuming, or raises."""
        failure = ConnectionFailed(f"GET {EVENTS_PATH}: the stream broke ({type(error).__name__}: {error})")
        if not isinstance(error, RETRYABLE_TRANSPORT_ERRORS):
            raise failure from error
        return self._pause(failure, None)

    def _pause(self, error: ApiError | ConnectionFailed, hint: float | None) -> float:
        self._failures += 1
        if self._failures >= self.pacing.policy.max_attempts:
            raise error
        return self.pacing.policy.delay(self._failures, hint, self.pacing.random)
