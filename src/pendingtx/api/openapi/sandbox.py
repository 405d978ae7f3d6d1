"""The /sandbox operations (contract 7.6): in the document of a sandbox only, as the routes are."""

from __future__ import annotations

from typing import Any

from pendingtx.api.openapi.errors import errors_of
from pendingtx.api.openapi.operations import REQUEST_TRACKING_ID, V1_SECURITY
from pendingtx.api.openapi.shapes import JSON, TRACKING, json_answer
from pendingtx.services.sandbox import MAX_ADVANCE_SECONDS

_NOTE = " Sandbox only: a server without sandbox mode answers 404 here."
_CLOCK = {
    "type": "object",
    "properties": {
        "now": {"type": "string", "format": "date-time", "description": "The server's time, US Eastern."},
        "offsetSeconds": {"type": "number", "minimum": 0, "description": "How far it has been moved."},
    },
    "required": ["now", "offsetSeconds"],
}
_ADVANCE = {
    "type": "object",
    "properties": {"advanceSeconds": {"type": "integer", "minimum": 0, "maximum": MAX_ADVANCE_SECONDS}},
    "required": ["advanceSeconds"],
    "additionalProperties": False,
}


def _operation(
    operation_id: str, summary: str, description: str, responses: dict[str, Any], **more: Any
) -> Any:
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": description + _NOTE,
        "security": V1_SECURITY,
        "parameters": [REQUEST_TRACKING_ID],
        **more,
        "responses": responses,
    }


PATHS: dict[str, Any] = {
    "/sandbox/clock": {
        "get": _operation(
            "getSandboxClock",
            "Read the sandbox's clock",
            "The time every lifetime, idle time, retention and retry schedule of the server is read from.",
            {"200": json_answer(_CLOCK, "The clock."), **errors_of(401, 403, 414, 429, 500, 503)},
        ),
        "post": _operation(
            "advanceSandboxClock",
            "Move the sandbox's clock forward",
            "For the whole server, the API and its embedded worker: tokens expire, retention runs.",
            {
                "200": json_answer(_CLOCK, "The clock as moved."),
                **errors_of(400, 401, 403, 413, 414, 415, 429, 500, 503),
            },
            requestBody={"required": True, "content": {JSON: {"schema": _ADVANCE}}},
        ),
    },
    "/sandbox/reset": {
        "post": _operation(
            "resetSandbox",
            "Empty the caller's organization",
            "Deletes its transactions, jobs (with their problems and claims) and events, and their "
            "webhook deliveries; applications and webhook endpoints stay.",
            {
                "204": {"description": "Emptied.", "headers": TRACKING},
                **errors_of(401, 403, 414, 429, 500, 503),
            },
        ),
    },
}
