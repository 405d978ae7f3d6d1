"""The document itself: the answers' schemas generated from their types, the hand-written request
schemas, headers, and every path."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from pendingtx import __version__
from pendingtx.api import answers
from pendingtx.api.openapi import events, oauth, operations, sandbox, webhooks
from pendingtx.api.openapi.errors import body_types, error_responses
from pendingtx.api.openapi.records import TYPE_RULES, request_schemas
from pendingtx.config import Settings

HEADERS: dict[str, Any] = {
    "requesttrackingid": {
        "description": "On every answer; equals the error body's trackingId. A UUID the client sends "
        "in this header is reused, otherwise one is generated.",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After-Hint": {
        "description": "While the job is not final: seconds to wait before polling again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Location": {
        "description": "The job's status URL.",
        "required": True,
        "schema": {"type": "string", "pattern": "^/v1/jobs/insight/status/[A-Za-z0-9_-]{22}==$"},
    },
    "Preference-Applied": events.PREFERENCE_APPLIED,
    "Allow": {"description": "The methods the path takes.", "required": True, "schema": {"type": "string"}},
    "WWW-Authenticate": {
        "description": 'The challenge: `Bearer realm="pendingtx"` (with `error="invalid_token"` when a '
        'token was sent) on /v1, `Basic realm="pendingtx"` on the token endpoints.',
        "required": True,
        "schema": {"type": "string"},
    },
}


def _as_numbers(node: Any) -> Any:
    """Decimals are written as JSON numbers (api/responses.py), not as msgspec's default strings."""
    if isinstance(node, dict):
        if node.get("format") == "decimal":
            node = {k: v for k, v in node.items() if k != "format"} | {"type": "number"}
        return {k: _as_numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_numbers(v) for v in node]
    return node


def answer_schemas() -> dict[str, Any]:
    """The answers' schema components, from api/answers.py and the error classes."""
    types = [*answers.ANSWERS, *body_types()]
    _, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    schemas: dict[str, Any] = _as_numbers(components)
    # What a type cannot say: which members a transaction of each type has.
    schemas["Transaction"]["allOf"] = TYPE_RULES
    return schemas


def _paths() -> dict[str, Any]:
    submit = operations.submit
    return {
        **oauth.PATHS,
        "/v1/jobs/{appName}/status/{key}": {"get": events.with_wait(operations.STATUS)},
        "/v1/jobs/{appName}": {"get": operations.LIST_JOBS},
        "/v1/jobs/{appName}/cancel/{key}": {"post": operations.CANCEL_JOB},
        "/v1/jobs/{appName}/results/{key}": {"get": operations.JOB_RESULTS},
        "/v1/events": {"get": events.EVENTS},
        "/v1/transactions": {
            "post": submit(
                "createTransactions",
                "Create pending transactions",
                "One record or an array of them (up to a setting); each record is a PendingTransaction.",
                "Batch",
                record="PendingTransaction",
                examples=operations.CREATE_EXAMPLES,
            ),
            "get": operations.LIST,
        },
        "/v1/transactions/{externalId}": {"get": operations.GET_TRANSACTION, "patch": operations.MODIFY},
        "/v1/transfers": {
            "post": submit(
                "createTransfers",
                "Create pending transfers",
                "As /v1/transactions; every record must be a transfer (a PendingTransfer).",
                "TransferBatch",
                record="PendingTransfer",
                examples=operations.TRANSFER_EXAMPLES,
            )
        },
        **webhooks.PATHS,
        "/healthz": {"get": operations.health("healthz", "Liveness", "Health", "The service is up.", 500)},
        "/readyz": {
            "get": operations.health(
                "readyz",
                "Readiness: the database answers",
                "Ready",
                "The service can serve requests.",
                500,
                503,
            )
        },
    }


_DESCRIPTION = (
    "Submit batches of pending fund transactions and follow each job to its outcome. Every answer "
    "carries a `requesttrackingid` header; every error answer has the body "
    "`{code, message, trackingId, transient, errors}`. A path that exists answers a method it does "
    "not take with 405 and an `Allow` header; an unknown path answers 404. Authorize with the AppKey "
    "as client id and the AppSecret as client secret, and the AppKey again as `appKey`."
)


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document served at /openapi.json; limits are `settings`' (by default, the defaults).

    A copy of its own: the operations are module-level dicts, which a consumer (schemathesis resolves
    references in place) must not change for the next document.
    """
    document = {
        "openapi": "3.1.0",
        "info": {"title": "pendingtx", "version": __version__, "description": _DESCRIPTION},
        # The /sandbox routes exist in a sandbox only; so do their operations here.
        "paths": {**_paths(), **(sandbox.PATHS if settings is not None and settings.sandbox else {})},
        "webhooks": webhooks.WEBHOOKS,
        "components": {
            "schemas": {**answer_schemas(), **request_schemas(settings or Settings()), **webhooks.schemas()},
            "responses": error_responses(),
            "headers": HEADERS,
            "securitySchemes": oauth.SECURITY_SCHEMES,
        },
    }
    return copy.deepcopy(document)
