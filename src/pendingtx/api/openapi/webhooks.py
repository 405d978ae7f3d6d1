"""Webhooks in the document (contract 7.3): the /v1/webhooks operations, their request and answer
schemas, and the deliveries themselves as OpenAPI 3.1 top-level `webhooks`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from pendingtx.api.answers import NO_NUL, Answer, Eastern
from pendingtx.api.openapi.errors import errors_of
from pendingtx.api.openapi.operations import REQUEST_TRACKING_ID, V1_SECURITY
from pendingtx.api.openapi.shapes import JSON, TRACKING, json_answer, query, ref
from pendingtx.domain.cursors import CURSOR_LENGTH, CURSOR_PATTERN, MAX_POSITION
from pendingtx.domain.jobs import JobStatus
from pendingtx.domain.webhooks import (
    ALL_EVENT_TYPES,
    MAX_DESCRIPTION_LENGTH,
    MAX_ENDPOINTS_PER_ORG,
    MAX_URL_LENGTH,
)
from pendingtx.services.webhooks import DEFAULT_PAGE, MAX_PAGE

EventName = Literal["job.submitted", "job.started", "job.progress", "job.completed"]
assert set(EventName.__args__) == set(ALL_EVENT_TYPES)  # type: ignore[attr-defined]
WebhookId = Annotated[str, msgspec.Meta(pattern="^wh_[A-Za-z0-9_-]+$")]
EventId = Annotated[str, msgspec.Meta(pattern="^evt_[A-Za-z0-9_-]+$")]
Count = Annotated[int, msgspec.Meta(ge=0)]


class Webhook(Answer):
    """A registered endpoint (never its secret)."""

    id: WebhookId
    url: str
    events: list[EventName]
    description: str | None
    enabled: Annotated[
        bool, msgspec.Meta(description="false once disabled by PATCH or after 5 days of failures")
    ]
    createdAt: Eastern


class NewWebhook(Answer):
    """A new endpoint with its signing secret, shown only in this answer."""

    id: WebhookId
    url: str
    events: list[EventName]
    description: str | None
    secret: Annotated[
        str, msgspec.Meta(pattern="^whsec_[A-Za-z0-9+/]+=*$", description="Standard Webhooks secret")
    ]
    enabled: bool
    createdAt: Eastern


class WebhookResults(Answer):
    """The organization's endpoints."""

    results: Annotated[list[Webhook], msgspec.Meta(max_length=MAX_ENDPOINTS_PER_ORG)]


class WebhookList(Answer):
    """The organization's endpoints, oldest first."""

    data: WebhookResults


class DeliveryAttempt(Answer):
    """One attempt to deliver an event: its HTTP status, or the error that prevented one."""

    eventId: EventId
    attempt: Annotated[int, msgspec.Meta(ge=1)]
    attemptedAt: Eastern
    statusCode: Annotated[int, msgspec.Meta(ge=100, le=599)] | None
    error: str | None
    durationMs: Count


class DeliveryResults(Answer):
    """The attempts of one page."""

    results: Annotated[list[DeliveryAttempt], msgspec.Meta(max_length=MAX_PAGE)]


class DeliveryPaging(Answer):
    """The page's size and the path of the next (older) page, if any."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)]
    next: Annotated[str | None, msgspec.Meta(description="the next page's path and query")]


class DeliveryPage(Answer):
    """One page of an endpoint's delivery log, newest first."""

    data: DeliveryResults
    paging: DeliveryPaging


class Replayed(Answer):
    """How many deliveries a replay queued."""

    queued: Count


class WebhookEventData(Answer):
    """The job as it was at the transition."""

    jobStatusQueryKey: str
    batchId: Annotated[str, msgspec.Meta(pattern="^[0-9]+$")]
    status: Annotated[str, msgspec.Meta(extra_json_schema={"enum": [s.value for s in JobStatus]})]
    recordCount: Count
    processedCount: Count
    failedCount: Count


class WebhookEvent(Answer):
    """An event of the log (contract 7.2), the body of every delivery."""

    id: EventId
    sequence: Annotated[int, msgspec.Meta(ge=1)]
    type: EventName
    createdAt: Eastern
    data: WebhookEventData


ANSWERS: tuple[type[Answer], ...] = (NewWebhook, Webhook, WebhookList, DeliveryPage, Replayed, WebhookEvent)

_EVENTS = {
    "type": "array",
    "minItems": 1,
    "maxItems": len(ALL_EVENT_TYPES) * 4,
    "items": {"type": "string", "enum": list(ALL_EVENT_TYPES)},
    "description": "the event types to receive (all when left out)",
}
_URL = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_URL_LENGTH,
    "pattern": "^https://[^\\s/?#@]+([/?][^\\s#]*)?$",
    "description": "https only; its host must resolve to public addresses only (else 400), unless "
    "the server allows private targets for development (then http too)",
}
_DESCRIPTION = {"type": ["string", "null"], "maxLength": MAX_DESCRIPTION_LENGTH, "pattern": NO_NUL}
REQUEST_SCHEMAS: dict[str, Any] = {
    "WebhookCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {"url": _URL, "events": _EVENTS, "description": _DESCRIPTION},
    },
    "WebhookChange": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": _URL,
            "events": _EVENTS,
            "description": _DESCRIPTION,
            "enabled": {"type": "boolean"},
        },
    },
    "WebhookReplay": {
        "type": "object",
        "additionalProperties": False,
        "required": ["after"],
        "properties": {
            "after": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_POSITION,
                "description": "re-send every matching event with a greater sequence",
            }
        },
    },
}


def schemas() -> dict[str, Any]:
    """The schema components of webhooks' answers and requests."""
    _, components = msgspec.json.schema_components(ANSWERS, ref_template="#/components/schemas/{name}")
    return {**components, **REQUEST_SCHEMAS}


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "an endpoint id of the caller's organization (another organization's is a 404)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL},
}
_READ_ERRORS = (400, 401, 403, 404, 414, 429, 500, 503)
_WRITE_ERRORS = (400, 401, 403, 404, 413, 414, 415, 429, 500, 503)


def _operation(
    operation_id: str, summary: str, description: str, responses: dict[str, Any], **more: Any
) -> Any:
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "security": V1_SECURITY,
        **more,
        "responses": responses,
    }


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref(schema)}}}


_GONE = {"description": "Deleted, with its pending deliveries and its log.", "headers": TRACKING}
PATHS: dict[str, Any] = {
    "/v1/webhooks": {
        "post": _operation(
            "createWebhook",
            "Register a webhook endpoint",
            f"At most {MAX_ENDPOINTS_PER_ORG} endpoints per organization. Events from now on are "
            "delivered (earlier ones by replay), signed the Standard Webhooks way with the secret of "
            "this answer, which is never shown again.",
            {
                "201": json_answer(ref("NewWebhook"), "The endpoint, with its signing secret."),
                **errors_of(*[s for s in _WRITE_ERRORS if s != 404]),
            },
            parameters=[REQUEST_TRACKING_ID],
            requestBody=_body("WebhookCreate"),
        ),
        "get": _operation(
            "listWebhooks",
            "List the organization's webhook endpoints",
            "Oldest first, without secrets.",
            {
                "200": json_answer(ref("WebhookList"), "The endpoints."),
                **errors_of(400, 401, 403, 414, 429, 500, 503),
            },
            parameters=[REQUEST_TRACKING_ID],
        ),
    },
    "/v1/webhooks/{id}": {
        "get": _operation(
            "getWebhook",
            "Read a webhook endpoint",
            "Without its secret.",
            {"200": json_answer(ref("Webhook"), "The endpoint."), **errors_of(*_READ_ERRORS)},
            parameters=[_ID, REQUEST_TRACKING_ID],
        ),
        "patch": _operation(
            "changeWebhook",
            "Change a webhook endpoint",
            "Any of url, events, description and enabled. Enabled again, an endpoint receives the "
            "events from then on (replay the ones in between if wanted).",
            {"200": json_answer(ref("Webhook"), "The endpoint as changed."), **errors_of(*_WRITE_ERRORS)},
            parameters=[_ID, REQUEST_TRACKING_ID],
            requestBody=_body("WebhookChange"),
        ),
        "delete": _operation(
            "deleteWebhook",
            "Delete a webhook endpoint",
            "Its pending deliveries are dropped.",
            {"204": _GONE, **errors_of(*_READ_ERRORS)},
            parameters=[_ID, REQUEST_TRACKING_ID],
        ),
    },
    "/v1/webhooks/{id}/deliveries": {
        "get": _operation(
            "listWebhookDeliveries",
            "The endpoint's delivery log",
            "Every attempt (event id, attempt number, time, HTTP status or error, duration), newest "
            "first, paged by opaque cursors.",
            {"200": json_answer(ref("DeliveryPage"), "One page of attempts."), **errors_of(*_READ_ERRORS)},
            parameters=[
                _ID,
                query(
                    "limit",
                    "page size",
                    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
                ),
                query(
                    "after",
                    "from `paging.next`: the page after (older than) that one; only a cursor this "
                    "listing issued is valid (else 400)",
                    {"type": "string", "pattern": f"^{CURSOR_PATTERN}$", "maxLength": CURSOR_LENGTH},
                ),
                REQUEST_TRACKING_ID,
            ],
        )
    },
    "/v1/webhooks/{id}/replay": {
        "post": _operation(
            "replayWebhook",
            "Send events again",
            "Queues every event of the endpoint's types after the given sequence (up to those already "
            "dispatched to it, at most 10,000 per call) to be delivered again.",
            {"202": json_answer(ref("Replayed"), "The deliveries queued."), **errors_of(*_WRITE_ERRORS)},
            parameters=[_ID, REQUEST_TRACKING_ID],
            requestBody=_body("WebhookReplay"),
        )
    },
}

_SIGNATURE_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "the event's id: the same for every attempt (deduplicate on it)",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds when this attempt was signed",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "`v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the "
        "secret's bytes (Standard Webhooks); `standardwebhooks.Webhook(secret).verify(body, headers)` "
        "checks it",
        "schema": {"type": "string"},
    },
]

WEBHOOKS: dict[str, Any] = {
    "jobEvent": {
        "post": {
            "operationId": "jobEvent",
            "summary": "An event of the organization's log, delivered to a registered endpoint",
            "description": "Sent by the workers, at least once: any 2xx within 10 s is success; anything "
            "else is retried with exponential backoff and jitter (by default after 5 s, 5 min, 30 min, "
            "2 h, 5 h and 10 h), then given up. Deliveries are not ordered. Redirects are not followed.",
            "parameters": _SIGNATURE_HEADERS,
            "requestBody": {"required": True, "content": {JSON: {"schema": ref("WebhookEvent")}}},
            "responses": {"2XX": {"description": "Received; any other answer (or none in 10 s) is retried."}},
        }
    }
}
