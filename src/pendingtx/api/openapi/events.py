"""The operations of contract 7.1 and 7.2: the status read's wait, and the event log (replay and stream)."""

from __future__ import annotations

from typing import Any

from pendingtx.api.openapi.errors import errors_of
from pendingtx.api.openapi.shapes import header, json_answer, query, ref
from pendingtx.domain.events import EventType
from pendingtx.services.event_log import DEFAULT_LIMIT, MAX_LIMIT

MAX_SEQUENCE = 10**18 - 1

WAIT = query(
    "wait",
    "Hold the answer until the job is final or this many seconds pass (long-poll). A server stopping "
    "answers held reads at once. Takes precedence over `Prefer: wait`.",
    {"type": "integer", "minimum": 0, "maximum": 60},
)
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "RFC 7240: `wait=N` asks for the same hold as `?wait=N` (more than 60 counts as 60; "
    "an unreadable preference is ignored). The answer then says `Preference-Applied: wait=N`.",
    "schema": {"type": "string"},
}
PREFERENCE_APPLIED = {
    "description": "The wait applied, when `Prefer: wait=N` asked for one.",
    "schema": {"type": "string", "pattern": "^wait=[0-9]{1,2}$"},
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "The sequence of the last event seen: the log is read after it (instead of `after`). "
    "Sent by EventSource clients when they reconnect a stream.",
    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
}

EVENTS: dict[str, Any] = {
    "operationId": "listEvents",
    "summary": "Replay or stream the organization's event log",
    "description": "Every job transition, once, in order: `job.submitted`, `job.started`, "
    "`job.progress` (at most one per chunk) and `job.completed`. As JSON, one page of events after "
    "`after`, oldest first. With `Accept: text/event-stream`, server-sent events: every matching "
    "event after `after` (or `Last-Event-ID`), then live ones, each as `id: <sequence>`, "
    "`event: <type>`, `data: <event JSON>`, and a comment line at least every 15 s. With `key` the "
    "stream ends after that job's `job.completed` (at once, when that is already before `after` or "
    "the organization has no such job). Open streams per organization are bounded (429 beyond).",
    "security": [{"oauth2": [], "appKey": []}, {"bearer": [], "appKey": []}],
    "parameters": [
        query(
            "after",
            "only events with a higher sequence",
            {"type": "integer", "minimum": 0, "maximum": MAX_SEQUENCE, "default": 0},
        ),
        query(
            "limit",
            "events per page (streams: per read)",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        ),
        query("type", "only events of this type", {"type": "string", "enum": [t.value for t in EventType]}),
        query(
            "key",
            "only the events of this job (a jobStatusQueryKey of the caller's organization; any other key "
            "finds nothing)",
            {"type": "string", "pattern": "^[A-Za-z0-9_=+-]{1,128}$"},
        ),
        LAST_EVENT_ID,
        {
            "name": "requesttrackingid",
            "in": "header",
            "required": False,
            "description": "Reused for the answer when it is a UUID; any other value is replaced.",
            "schema": {"type": "string"},
        },
    ],
    "responses": {
        "200": {
            **json_answer(
                ref("EventPage"), "A page of events, or (with `Accept: text/event-stream`) the stream."
            ),
            "content": {
                "application/json": {"schema": ref("EventPage")},
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "example": 'id: 3\nevent: job.completed\ndata: {"id": "evt_…", "sequence": 3, '
                    '"type": "job.completed", …}\n\n: ping\n\n',
                },
            },
        },
        **errors_of(400, 401, 403, 414, 429, 500, 503),
    },
}


def with_wait(status: dict[str, Any]) -> dict[str, Any]:
    """The status operation with its long-poll parameters and answer header."""
    answer = status["responses"]["200"]
    return {
        **status,
        "description": "With `?wait=N` (or `Prefer: wait=N`) the answer is held until the job is final "
        "or N seconds pass; held reads per organization are bounded (429 beyond).",
        "parameters": [*status["parameters"], WAIT, PREFER],
        "responses": {
            **status["responses"],
            "200": {
                **answer,
                "headers": {**answer["headers"], "Preference-Applied": header("Preference-Applied")},
            },
        },
    }


__all__ = ["EVENTS", "PREFERENCE_APPLIED", "with_wait"]
