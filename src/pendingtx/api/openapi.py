"""The service's own OpenAPI 3.1 description, and the page that renders it at /docs.

The document is precise enough to fuzz against (tests/api/test_fuzz.py): every status an operation
can answer is listed with its exact error body, `requesttrackingid` is a required header of every
answer, and parameters carry the patterns the server enforces. A request body's schema is what is
checked before the 202 (a batch is an object or an array of 1 to 10,000 objects); the rules each
record must meet, which the worker applies after the 202, are the PendingTransaction schema, which
the stored transactions of the answers follow too. What JSON Schema cannot say (a date range that
ends before it starts, `after` together with `before`, a cursor this server did not issue) is said
in the descriptions.
"""

from __future__ import annotations

from typing import Any

import pycountry

from pendingtx import __version__
from pendingtx.domain.cursors import CURSOR_LENGTH, CURSOR_PATTERN
from pendingtx.domain.jobs import JobStatus
from pendingtx.domain.json_text import MAX_JSON_DEPTH
from pendingtx.domain.transactions import (
    NO_QUANTITY_TYPES,
    ONE_QUANTITY_TYPES,
    SWITCH_TYPES,
    TRANSFER_TYPES,
    TransactionStatus,
    TransactionType,
)

JSON = "application/json"

# --- building blocks --------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


_TRACKING = {"requesttrackingid": _header("requesttrackingid")}


def _json(schema: dict[str, Any], description: str, **headers: Any) -> dict[str, Any]:
    """A JSON answer; every answer carries `requesttrackingid`."""
    return {
        "description": description,
        "headers": {**_TRACKING, **headers},
        "content": {JSON: {"schema": schema}},
    }


# Each error status: (response name, code(s), transient, description). The body is the contract's
# error body (section 4) with that code; 429 and 503 are transient and always carry Retry-After.
_ERRORS: dict[str, tuple[str, tuple[str, ...], bool, str]] = {
    "400": (
        "BadRequest",
        ("request.validation.failure",),
        False,
        "The request is malformed: a path or query parameter, a header (request headers may total "
        "16 KiB, one value 8 KiB), or the body (not JSON, the wrong shape, arrays and objects nested "
        "more than 32 levels deep). `errors` names each offending input.",
    ),
    "401": (
        "Unauthorized",
        ("gateway.authentication.failure",),
        False,
        "Missing, malformed, unknown, revoked or expired token; missing or wrong AppKey; disabled "
        "application.",
    ),
    "403": (
        "Forbidden",
        ("gateway.authentication.failure", "gateway.access.failure"),
        False,
        "The application is not entitled to this product (`gateway.authentication.failure`), or the "
        "caller's address is not on the application's allow-list (`gateway.access.failure`).",
    ),
    "404": (
        "NotFound",
        ("resource.not.found",),
        False,
        "Unknown job key or externalId (another organization's are never revealed).",
    ),
    "405": (
        "MethodNotAllowed",
        ("request.method.not.allowed",),
        False,
        "The path exists but does not take this method; `Allow` lists the methods it does take.",
    ),
    # The contract's other 409, `job.already.finished`, comes with job cancellation (not served yet).
    "409": (
        "KeyInUse",
        ("idempotency.key.in.use",),
        True,
        "A request with this Idempotency-Key is still being stored. Sent again unchanged after "
        "`Retry-After` seconds, the request gets the first one's answer.",
    ),
    "413": ("TooLarge", ("request.too.large",), False, "The body is larger than the size limit."),
    "414": (
        "UriTooLong",
        ("request.uri.too.long",),
        False,
        "The URL (path and query) is longer than the limit (2048 characters by default).",
    ),
    "415": (
        "UnsupportedMediaType",
        ("request.unsupported.media.type",),
        False,
        "The body's Content-Type is not one this operation accepts.",
    ),
    "422": (
        "KeyReused",
        ("idempotency.key.reused",),
        False,
        "The Idempotency-Key was used before with a different request: another method, path, "
        "query, Content-Type or body.",
    ),
    "429": (
        "RateLimited",
        ("request.rate.limited",),
        True,
        "Too many requests (or failed authentications) for this application or address; retry after "
        "`Retry-After` seconds.",
    ),
    "500": (
        "InternalFailure",
        ("internal.server.failure",),
        False,
        "An unexpected failure; the body never carries a stack trace.",
    ),
    "503": (
        "ServiceUnavailable",
        ("service.unavailable",),
        True,
        "The database is unreachable or busy; retry after `Retry-After` seconds.",
    ),
}

# On the token endpoint the body also carries RFC 6749's `error` and `error_description` when the
# failure is the endpoint's own; a 414 is decided before any route, and a 429 or 5xx may be either.
_OAUTH_STATUSES = {"400", "401", "413", "415"}
_MAYBE_OAUTH_STATUSES = {"429", "500", "503"}
_TOKEN_STATUSES = ("400", "401", "413", "414", "415", "429", "500", "503")


def _error_schema(status: str, base: dict[str, Any]) -> dict[str, Any]:
    _, codes, transient, _ = _ERRORS[status]
    code: dict[str, Any] = {"const": codes[0]} if len(codes) == 1 else {"enum": list(codes)}
    return {"allOf": [base, {"properties": {"code": code, "transient": {"const": transient}}}]}


def _error_response(status: str, *, token_endpoint: bool = False) -> dict[str, Any]:
    _, _, transient, description = _ERRORS[status]
    base: dict[str, Any]
    if not token_endpoint:
        base = _ref("Error")
    elif status in _OAUTH_STATUSES:
        base = _ref("OAuthError")
    elif status in _MAYBE_OAUTH_STATUSES:
        base = {"anyOf": [_ref("Error"), _ref("OAuthError")]}
    else:
        base = _ref("Error")
    headers: dict[str, Any] = dict(_TRACKING)
    if transient:
        headers["Retry-After"] = {**_header("Retry-After"), "required": True}
    if status == "405":
        headers["Allow"] = _header("Allow")
    if token_endpoint and status == "401":
        headers["WWW-Authenticate"] = {
            "description": '`Basic realm="pendingtx"` when the request carried no client credentials',
            "schema": {"type": "string"},
        }
    return {
        "description": description,
        "headers": headers,
        "content": {JSON: {"schema": _error_schema(status, base)}},
    }


def _errors(*statuses: str) -> dict[str, Any]:
    """References to the shared error answers."""
    return {status: _response(_ERRORS[status][0]) for status in statuses}


def _token_errors(*statuses: str) -> dict[str, Any]:
    return {status: _response("Token" + _ERRORS[status][0]) for status in statuses}


# --- value shapes -----------------------------------------------------------------------------------

# No text the service takes may hold NUL (U+0000): not a path or query parameter (400), nor a member
# of a record (PostgreSQL cannot store it in text).
_NO_NUL = "^[^\\u0000]*$"
_STRING_64 = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": _NO_NUL}
_OPTIONAL_STRING_64 = {"type": ["string", "null"], "minLength": 1, "maxLength": 64, "pattern": _NO_NUL}
# Cursors are sealed by the server and written in URL-safe base64 without padding.
_CURSOR = {"type": "string", "pattern": f"^{CURSOR_PATTERN}$", "maxLength": CURSOR_LENGTH}

# A decimal > 0 and <= 10^13 written positionally (no exponent, no sign), with at most `places`
# decimal places once trailing zeros are dropped ("1.500" has one).
_MAX_QUANTITY_TEXT = "10000000000000"


def _decimal_text(places: int) -> str:
    whole = rf"0*[1-9][0-9]{{0,12}}(\.[0-9]{{1,{places}}}0*)?"
    limit = rf"0*{_MAX_QUANTITY_TEXT}(\.0+)?"
    fraction = rf"0+\.[0-9]{{0,{places - 1}}}[1-9]0*"
    return f"^({whole}|{limit}|{fraction})$"


def _quantity(places: int, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "oneOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": 10**13},
            {"type": "string", "pattern": _decimal_text(places)},
            {"type": "null"},
        ],
    }


# yyyy-MM-dd, a real calendar date from 0001-01-01 (29 February only in leap years).
_YEAR = "([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
_LEAP_YEAR = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = "((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
_DATE = f"({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{3})?"
DATE_PATTERN = f"^{_DATE}$"
MOMENT_PATTERN = f"^{_DATE}({_TIME})?$"

_CODES = sorted({code for _, codes, _, _ in _ERRORS.values() for code in codes})
_CURRENCIES = sorted(str(currency.alpha_3) for currency in pycountry.currencies)
_JSON_POINTER = "^(/([^~/]|~[01])*)*$"


def _present(*members: str) -> dict[str, Any]:
    return {"required": list(members), "properties": {m: {"not": {"type": "null"}} for m in members}}


def _absent(*members: str) -> dict[str, Any]:
    """Each member left out, or null (the same thing in a record)."""
    return {"properties": {m: {"type": "null"} for m in members}}


def _for_types(types: frozenset[TransactionType], then: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {"required": ["type"], "properties": {"type": {"enum": sorted(t.value for t in types)}}},
        "then": then,
    }


_ALL_TYPES = frozenset(TransactionType)
# The rules by type, for records submitted and stored alike.
_TYPE_RULES = [
    _for_types(NO_QUANTITY_TYPES, _absent("amount", "units")),
    _for_types(ONE_QUANTITY_TYPES, {"oneOf": [_present("amount"), _present("units")]}),
    _for_types(
        _ALL_TYPES - NO_QUANTITY_TYPES - ONE_QUANTITY_TYPES, {"allOf": [_present("amount"), _absent("units")]}
    ),
    _for_types(_ALL_TYPES - SWITCH_TYPES - TRANSFER_TYPES, _absent("toProductExternalId")),
    _for_types(_ALL_TYPES - TRANSFER_TYPES, _absent("toInvestorExternalId")),
    _for_types(SWITCH_TYPES, _present("toProductExternalId")),
    _for_types(
        TRANSFER_TYPES, {"anyOf": [_present("toProductExternalId"), _present("toInvestorExternalId")]}
    ),
]


def _record_schema(types: list[str], description: str) -> dict[str, Any]:
    """A pending transaction as a client submits it; JSON null counts as an absent optional member."""
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "allOf": _TYPE_RULES,
        "required": ["externalId", "type", "productExternalId", "investorExternalId", "tradeDate"],
        "properties": {
            "externalId": {
                "type": "string",
                "pattern": "^[A-Za-z0-9._:-]{1,64}$",
                "description": "unique within the organization and within the batch",
            },
            "type": {"type": "string", "enum": types},
            "status": {
                "type": ["string", "null"],
                "enum": [TransactionStatus.ACTIVE.value, None],
                "default": TransactionStatus.ACTIVE.value,
                "description": "a transaction cannot be created as Cancel",
            },
            "productExternalId": _STRING_64,
            "investorExternalId": _STRING_64,
            "contactExternalId": _OPTIONAL_STRING_64,
            "toProductExternalId": {
                **_OPTIONAL_STRING_64,
                "description": "required for the Switch or Exchange types, allowed for transfers; "
                "must differ from productExternalId",
            },
            "toInvestorExternalId": {
                **_OPTIONAL_STRING_64,
                "description": "transfers only; must differ from investorExternalId",
            },
            "amount": _quantity(2, "> 0, at most 2 decimal places, at most 10^13; a string keeps it exact"),
            "units": _quantity(6, "> 0, at most 6 decimal places, at most 10^13"),
            "currency": {
                "type": ["string", "null"],
                "enum": [*_CURRENCIES, None],
                "default": "USD",
                "description": "ISO 4217 alphabetic code",
            },
            "tradeDate": {"type": "string", "pattern": DATE_PATTERN, "description": "yyyy-MM-dd"},
            "settlementDate": {
                "type": ["string", "null"],
                "pattern": DATE_PATTERN,
                "description": "yyyy-MM-dd, not before tradeDate",
            },
            "comments": {"type": ["string", "null"], "maxLength": 500, "pattern": _NO_NUL},
        },
    }


_RECORD_RULES = (
    "The worker checks every record against these rules after the 202: a record breaking one is "
    "rejected (named in the job's validationMessage and validationDetails), and the other records "
    "of the batch are created. Rules by type: Full Redemption, Full Transfer, Full Switch or "
    "Exchange and Account Maintenance take neither amount nor units; Partial Redemption, Partial "
    "Transfer and Partial Switch or Exchange take exactly one of them; every other type requires "
    "amount and takes no units. The Switch or Exchange types require toProductExternalId; "
    "transfers need toInvestorExternalId or toProductExternalId, and only they take "
    "toInvestorExternalId. Beyond JSON Schema: externalId is unique in the organization and in the "
    "batch, a member name appears once in a record, each to*ExternalId differs from its source, and "
    "settlementDate is not before tradeDate."
)


def _batch_schema(record: str) -> dict[str, Any]:
    """What is checked of a batch before the 202: its shape, not its records."""
    return {
        "description": "One record, or an array of 1 to 10,000 (a setting) records; arrays and objects "
        f"nest at most {MAX_JSON_DEPTH} levels deep. Each record is checked by the worker after the "
        f"202 against the {record} schema: a record breaking it is rejected in the job's status, not "
        "with a 400.",
        "oneOf": [
            _ref("Record"),
            {"type": "array", "minItems": 1, "maxItems": 10000, "items": _ref("Record")},
        ],
    }


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "The contract's error body; `requesttrackingid` repeats `trackingId`.",
        "additionalProperties": False,
        "required": ["code", "message", "trackingId", "transient", "errors"],
        "properties": {
            "code": {"type": "string", "enum": _CODES},
            "message": {"type": "string", "minLength": 1},
            "trackingId": {"type": "string", "format": "uuid"},
            "transient": {
                "type": "boolean",
                "description": "true only if the same request may succeed later",
            },
            "errors": {"type": "array", "items": _ref("ErrorDetail")},
        },
    },
    "OAuthError": {
        "type": "object",
        "description": "The error body of the token endpoint: the contract's members, then RFC 6749's.",
        "additionalProperties": False,
        "required": ["code", "message", "trackingId", "transient", "errors", "error", "error_description"],
        "properties": {
            "code": {"type": "string", "enum": _CODES},
            "message": {"type": "string", "minLength": 1},
            "trackingId": {"type": "string", "format": "uuid"},
            "transient": {"type": "boolean"},
            "errors": {"type": "array", "items": _ref("ErrorDetail")},
            "error": {
                "type": "string",
                "enum": [
                    "invalid_request",
                    "invalid_client",
                    "invalid_grant",
                    "unauthorized_client",
                    "unsupported_grant_type",
                    "invalid_scope",
                ],
            },
            "error_description": {"type": "string"},
        },
    },
    "ErrorDetail": {
        "type": "object",
        "additionalProperties": False,
        "required": ["field", "location", "reason"],
        "properties": {
            "field": {"type": "string"},
            "location": {"type": "string", "enum": ["path", "query", "header", "body"]},
            "reason": {"type": "string"},
        },
    },
    "Token": {
        "type": "object",
        "additionalProperties": False,
        "required": ["access_token", "token_type", "expires_in", "issued_at", "application_name", "status"],
        "properties": {
            "access_token": {"type": "string", "minLength": 43},
            "token_type": {"type": "string", "const": "Bearer"},
            "expires_in": {"type": "integer", "minimum": 1},
            "issued_at": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "milliseconds since the epoch",
            },
            "application_name": {"type": "string"},
            "status": {"type": "string", "const": "approved"},
        },
    },
    "Revoked": {
        "type": "object",
        "additionalProperties": False,
        "required": ["status"],
        "properties": {"status": {"type": "string", "const": "revoked"}},
    },
    "JobAccepted": {
        "type": "object",
        "additionalProperties": False,
        "required": ["jobStatusQueryKey", "batchId"],
        "properties": {
            "jobStatusQueryKey": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}==$"},
            "batchId": {"type": "string", "pattern": "^[0-9]+$"},
        },
    },
    "JobStatus": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "status",
            "batchId",
            "message",
            "validationMessage",
            "recordCount",
            "processedCount",
            "failedCount",
            "submittedAt",
            "completedAt",
            "validationDetails",
            "truncated",
        ],
        "properties": {
            "status": {"type": "string", "enum": [s.value for s in JobStatus]},
            "batchId": {"type": "string", "pattern": "^[0-9]+$"},
            "message": {"type": "string"},
            "validationMessage": {"type": "array", "items": {"type": "string"}},
            "recordCount": {"type": "integer", "minimum": 0},
            "processedCount": {"type": "integer", "minimum": 0},
            "failedCount": {"type": "integer", "minimum": 0},
            "submittedAt": {"type": "string", "format": "date-time"},
            "completedAt": {"type": ["string", "null"], "format": "date-time"},
            "validationDetails": {"type": "array", "items": _ref("ValidationDetail")},
            "truncated": {
                "type": "boolean",
                "description": "true when the job has more problems than the answer lists (a setting)",
            },
        },
    },
    "ValidationDetail": {
        "type": "object",
        "additionalProperties": False,
        "required": ["index", "externalId", "field", "reason"],
        "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "0-based position in the batch"},
            "externalId": {"type": ["string", "null"]},
            "field": {"type": "string", "description": 'the record\'s member, or "" for the record'},
            "reason": {"type": "string"},
        },
    },
    "PendingTransaction": _record_schema(
        [t.value for t in TransactionType], "A pending transaction to create. " + _RECORD_RULES
    ),
    "PendingTransfer": _record_schema(
        [t.value for t in TransactionType if t in TRANSFER_TYPES],
        "A pending transfer to create. " + _RECORD_RULES,
    ),
    "Transaction": {
        "type": "object",
        "description": "A stored transaction: a PendingTransaction as the worker accepted it (or as a "
        "modification left it), with the server's members. Members without a value are left out.",
        "additionalProperties": False,
        "allOf": _TYPE_RULES,
        "required": [
            "externalId",
            "type",
            "status",
            "productExternalId",
            "investorExternalId",
            "currency",
            "tradeDate",
            "createDate",
            "changeDate",
        ],
        "properties": {
            "externalId": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
            "type": {"type": "string", "enum": [t.value for t in TransactionType]},
            "status": {"type": "string", "enum": [s.value for s in TransactionStatus]},
            "productExternalId": _STRING_64,
            "investorExternalId": _STRING_64,
            "contactExternalId": _STRING_64,
            "toProductExternalId": _STRING_64,
            "toInvestorExternalId": _STRING_64,
            "amount": {"type": "number", "exclusiveMinimum": 0, "description": "exactly as stored"},
            "units": {"type": "number", "exclusiveMinimum": 0, "description": "exactly as stored"},
            "currency": {"type": "string", "enum": _CURRENCIES},
            "tradeDate": {"type": "string", "format": "date"},
            "settlementDate": {"type": "string", "format": "date"},
            "comments": {"type": "string", "maxLength": 500, "pattern": _NO_NUL},
            "createDate": {"type": "string", "format": "date-time", "description": "US Eastern offset"},
            "changeDate": {"type": "string", "format": "date-time", "description": "US Eastern offset"},
        },
    },
    "TransactionPage": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "paging"],
        "properties": {
            "data": {
                "type": "object",
                "additionalProperties": False,
                "required": ["results"],
                "properties": {"results": {"type": "array", "maxItems": 50, "items": _ref("Transaction")}},
            },
            "paging": {
                "type": "object",
                "additionalProperties": False,
                "required": ["totalCount", "limit", "cursors", "next", "previous"],
                "properties": {
                    "totalCount": {"type": "integer", "minimum": 0},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                    "cursors": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["before", "after"],
                        "properties": {
                            "before": {"anyOf": [_CURSOR, {"type": "null"}]},
                            "after": {"anyOf": [_CURSOR, {"type": "null"}]},
                        },
                    },
                    "next": {"type": ["string", "null"], "description": "the next page's path and query"},
                    "previous": {"type": ["string", "null"]},
                },
            },
        },
    },
    "JsonPatch": {
        "type": "array",
        "description": "RFC 6902; pointers are RFC 6901.",
        "minItems": 1,
        "items": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["op", "path", "value"],
                    "properties": {
                        "op": {"enum": ["add", "replace", "test"]},
                        "path": {"type": "string", "pattern": _JSON_POINTER},
                        "value": {},
                    },
                },
                {
                    "type": "object",
                    "required": ["op", "path"],
                    "properties": {
                        "op": {"const": "remove"},
                        "path": {"type": "string", "pattern": _JSON_POINTER},
                    },
                },
                {
                    "type": "object",
                    "required": ["op", "path", "from"],
                    "properties": {
                        "op": {"enum": ["move", "copy"]},
                        "path": {"type": "string", "pattern": _JSON_POINTER},
                        "from": {"type": "string", "pattern": _JSON_POINTER},
                    },
                },
            ]
        },
    },
    "Batch": _batch_schema("PendingTransaction"),
    "TransferBatch": _batch_schema("PendingTransfer"),
    "Record": {
        "type": "object",
        "description": "One record of a batch. Any JSON object is accepted with the batch; the worker "
        "then creates it or rejects it by the rules of the PendingTransaction schema (PendingTransfer "
        "on /v1/transfers).",
    },
    "Health": {
        "type": "object",
        "additionalProperties": False,
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    },
    "Ready": {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "database"],
        "properties": {"status": {"const": "ready"}, "database": {"const": "ok"}},
    },
}

_HEADERS: dict[str, Any] = {
    "requesttrackingid": {
        "description": "On every answer; equals the error body's trackingId. A UUID the client sends "
        "in this header is reused, otherwise one is generated.",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again (or, on a status, before polling again).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Location": {
        "description": "The job's status URL.",
        "required": True,
        "schema": {"type": "string", "pattern": "^/v1/jobs/insight/status/[A-Za-z0-9_-]{22}==$"},
    },
    "Allow": {
        "description": "The methods the path takes.",
        "required": True,
        "schema": {"type": "string"},
    },
}

# --- parameters -------------------------------------------------------------------------------------

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1-255 visible ASCII characters (IETF httpapi idempotency-key draft). Retrying with "
    "the same key and the same request answers with the same job instead of a new one; the same key "
    "with a different request is a 422, and while the first request with the key is still being "
    "stored, a 409.",
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
}

_REQUEST_TRACKING_ID = {
    "name": "requesttrackingid",
    "in": "header",
    "required": False,
    "description": "Reused for the answer when it is a UUID; any other value is replaced.",
    "schema": {"type": "string"},
}

_V1_SECURITY: list[dict[str, list[str]]] = [{"bearer": [], "appKey": []}]


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_MOMENT = {"type": "string", "pattern": MOMENT_PATTERN}
_MOMENT_TEXT = "yyyy-MM-ddTHH:mm:ss.SSS or yyyy-MM-dd, US Eastern time, inclusive"
_CURSOR_NOTE = (
    ". Opaque: only a cursor this listing issued to the organization is valid (else 400); after and "
    "before cannot be combined."
)

_LIST_PARAMETERS = [
    _query("status", "Active or Cancel", {"type": "string", "enum": [s.value for s in TransactionStatus]}),
    _query(
        "type", "one of the transaction types", {"type": "string", "enum": [t.value for t in TransactionType]}
    ),
    _query("externalId", "exact externalId", _STRING_64),
    _query("productExternalId", "exact productExternalId", _STRING_64),
    _query("investorExternalId", "exact investorExternalId", _STRING_64),
    _query("contactExternalId", "exact contactExternalId", _STRING_64),
    _query("createStartDate", _MOMENT_TEXT, _MOMENT),
    _query("createEndDate", _MOMENT_TEXT + "; not before createStartDate", _MOMENT),
    _query("changeStartDate", _MOMENT_TEXT, _MOMENT),
    _query("changeEndDate", _MOMENT_TEXT + "; not before changeStartDate", _MOMENT),
    _query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 50, "default": 25}),
    _query("after", "`paging.cursors.after` of a page: the page after it" + _CURSOR_NOTE, _CURSOR),
    _query("before", "`paging.cursors.before` of a page: the page before it" + _CURSOR_NOTE, _CURSOR),
]

# --- operations -------------------------------------------------------------------------------------

# Links: where an answer's values lead (and what schemathesis' stateful tests chain).
_STATUS_LINK = {
    "operationId": "getJobStatus",
    "parameters": {"appName": "insight", "key": "$response.body#/jobStatusQueryKey"},
    "description": "The status of the job this request created.",
}


def _modify_link(external_id: str, description: str) -> dict[str, Any]:
    return {
        "operationId": "modifyTransaction",
        "parameters": {"externalId": external_id},
        "description": description,
    }


def _list_link(external_id: str, description: str) -> dict[str, Any]:
    return {
        "operationId": "listTransactions",
        "parameters": {"externalId": external_id},
        "description": description,
    }


_SUBMIT_LINKS = {
    "JobStatus": _STATUS_LINK,
    "ListRecord": _list_link("$request.body#/externalId", "The record sent alone, once created."),
    "ListFirstRecord": _list_link("$request.body#/0/externalId", "The batch's first record, once created."),
    "ModifyRecord": _modify_link("$request.body#/externalId", "Modify the record sent alone, once created."),
    "ModifyFirstRecord": _modify_link(
        "$request.body#/0/externalId", "Modify the batch's first record, once created."
    ),
}
_MODIFY_LINKS = {
    "JobStatus": _STATUS_LINK,
    "ModifyAgain": _modify_link("$request.path.externalId", "Modify the same transaction again."),
}
_LIST_LINKS = {
    "ModifyListed": _modify_link("$response.body#/data/results/0/externalId", "Modify the first listed."),
    "NextPage": {
        "operationId": "listTransactions",
        "parameters": {"after": "$response.body#/paging/cursors/after"},
        "description": "The page after this one.",
    },
    "PreviousPage": {
        "operationId": "listTransactions",
        "parameters": {"before": "$response.body#/paging/cursors/before"},
        "description": "The page before this one.",
    },
}


def _accepted(description: str, links: dict[str, Any]) -> dict[str, Any]:
    return {**_json(_ref("JobAccepted"), description, Location=_header("Location")), "links": links}


_EXAMPLE_RECORD = {
    "externalId": "PT-1001",
    "type": "New Subscription",
    "productExternalId": "FUND-A",
    "investorExternalId": "INV-1",
    "amount": "2500.00",
    "currency": "USD",
    "tradeDate": "2026-11-27",
}
_EXAMPLE_TRANSFER = {
    "externalId": "PT-2001",
    "type": "Partial Transfer",
    "productExternalId": "FUND-A",
    "investorExternalId": "INV-1",
    "toInvestorExternalId": "INV-2",
    "units": "12.5",
    "tradeDate": "2026-11-27",
}
_CREATE_EXAMPLES = {
    "record": {"summary": "One record", "value": _EXAMPLE_RECORD},
    "batch": {
        "summary": "A batch",
        "value": [
            {**_EXAMPLE_RECORD, "externalId": "PT-1002"},
            {
                "externalId": "PT-1003",
                "type": "Full Redemption",
                "productExternalId": "FUND-B",
                "investorExternalId": "INV-1",
                "tradeDate": "2026-11-27",
            },
        ],
    },
}
_TRANSFER_EXAMPLES = {"record": {"summary": "One transfer", "value": _EXAMPLE_TRANSFER}}


def _submit(
    operation_id: str, summary: str, description: str, batch: str, *, record: str, examples: dict[str, Any]
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "security": _V1_SECURITY,
        "parameters": [
            _query("state", "the only valid value is `pending`", {"type": "string", "enum": ["pending"]}),
            _IDEMPOTENCY_KEY,
            _REQUEST_TRACKING_ID,
        ],
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref(batch), "examples": examples}}},
        "responses": {
            "202": _accepted(
                "The batch is stored durably as one job; the worker then creates each record or "
                f"rejects it by the rules of {record}.",
                _SUBMIT_LINKS,
            ),
            **_errors("400", "401", "403", "409", "413", "414", "415", "422", "429", "500", "503"),
        },
    }


_LIST: dict[str, Any] = {
    "operationId": "listTransactions",
    "summary": "List the organization's transactions",
    "description": "Filters combine with AND; pages follow creation order. A repeated or unknown "
    "parameter, a range that ends before it starts, or `after` together with `before` is a 400.",
    "security": _V1_SECURITY,
    "parameters": [*_LIST_PARAMETERS, _REQUEST_TRACKING_ID],
    "responses": {
        "200": {**_json(_ref("TransactionPage"), "One page of transactions."), "links": _LIST_LINKS},
        **_errors("400", "401", "403", "414", "429", "500", "503"),
    },
}

_MODIFY: dict[str, Any] = {
    "operationId": "modifyTransaction",
    "summary": "Modify or cancel a transaction",
    "description": "JSON Patch (RFC 6902) or merge patch (RFC 7396), applied by the worker. Setting "
    "status to Cancel cancels; externalId, createDate and changeDate cannot change; a cancelled "
    "transaction cannot be modified.",
    "security": _V1_SECURITY,
    "parameters": [
        {
            "name": "externalId",
            "in": "path",
            "required": True,
            "description": "an externalId of the caller's organization",
            "schema": {"type": "string", "minLength": 1, "pattern": _NO_NUL},
        },
        _IDEMPOTENCY_KEY,
        _REQUEST_TRACKING_ID,
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json-patch+json": {
                "schema": _ref("JsonPatch"),
                "example": [{"op": "replace", "path": "/comments", "value": "confirmed by phone"}],
            },
            "application/merge-patch+json": {"schema": {"type": "object"}, "example": {"status": "Cancel"}},
            JSON: {"schema": {"type": "object", "description": "read as a merge patch"}},
        },
    },
    "responses": {
        "202": _accepted("The modification is stored durably as one job.", _MODIFY_LINKS),
        **_errors("400", "401", "403", "404", "409", "413", "414", "415", "422", "429", "500", "503"),
    },
}

_GET_TRANSACTION: dict[str, Any] = {
    "operationId": "getTransaction",
    "summary": "Read one transaction",
    "description": "The transaction as the listing shows it. An externalId that the caller's "
    "organization does not have is a 404, whether or not another organization has it.",
    "security": _V1_SECURITY,
    "parameters": [
        {
            "name": "externalId",
            "in": "path",
            "required": True,
            "description": "an externalId of the caller's organization",
            "schema": {"type": "string", "minLength": 1, "pattern": _NO_NUL},
        },
        _REQUEST_TRACKING_ID,
    ],
    "responses": {
        "200": _json(_ref("Transaction"), "The transaction."),
        **_errors("400", "401", "403", "404", "414", "429", "500", "503"),
    },
}

_STATUS: dict[str, Any] = {
    "operationId": "getJobStatus",
    "summary": "Status of a job",
    "security": _V1_SECURITY,
    "parameters": [
        {
            "name": "appName",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "const": "insight"},
        },
        {
            "name": "key",
            "in": "path",
            "required": True,
            "description": "a jobStatusQueryKey; one of another organization is answered as unknown (404)",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_=+-]{1,128}$"},
        },
        _REQUEST_TRACKING_ID,
    ],
    "responses": {
        "200": _json(
            _ref("JobStatus"),
            "The job's status; while it is not final, `Retry-After` says when to poll again.",
            **{"Retry-After": _header("Retry-After")},
        ),
        **_errors("400", "401", "403", "404", "414", "429", "500", "503"),
    },
}

_CLIENT_FIELDS = {
    "client_id": {"type": "string", "description": "the AppKey, when there is no Authorization header"},
    "client_secret": {"type": "string", "description": "the AppSecret, with client_id"},
}

_TOKEN: dict[str, Any] = {
    "operationId": "token",
    "summary": "Mint or revoke an access token",
    "description": "Client authentication with HTTP Basic (AppKey:AppSecret, with or without the "
    "`Basic ` prefix) or the client_id/client_secret form fields. `grant_type=client_credentials` "
    "mints; `grant_type=invalidate_token&token=...` revokes one of the caller's own tokens. Repeated "
    "failed authentications of an AppKey or an address are answered 429 for a while.",
    "security": [{"basic": []}, {}],
    "parameters": [_REQUEST_TRACKING_ID],
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["grant_type"],
                            "properties": {"grant_type": {"const": "client_credentials"}, **_CLIENT_FIELDS},
                        },
                        {
                            "type": "object",
                            "required": ["grant_type", "token"],
                            "properties": {
                                "grant_type": {"const": "invalidate_token"},
                                "token": {
                                    "type": "string",
                                    "minLength": 1,
                                    "description": "the access token to revoke",
                                },
                                **_CLIENT_FIELDS,
                            },
                        },
                    ]
                }
            }
        },
    },
    "responses": {
        "200": _json(
            {"oneOf": [_ref("Token"), _ref("Revoked")]},
            "A new token (or the confirmation of a revocation).",
            **{
                "Cache-Control": {"required": True, "schema": {"type": "string", "const": "no-store"}},
                "Pragma": {"schema": {"type": "string", "const": "no-cache"}},
            },
        ),
        **_token_errors(*_TOKEN_STATUSES),
    },
}


def _components() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (name, _, _, _) in _ERRORS.items():
        responses[name] = _error_response(status)
    for status in _TOKEN_STATUSES:
        responses["Token" + _ERRORS[status][0]] = _error_response(status, token_endpoint=True)
    return {
        "schemas": _SCHEMAS,
        "responses": responses,
        "headers": _HEADERS,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "an access_token from /v2/oauthtoken",
            },
            "appKey": {"type": "apiKey", "in": "header", "name": "AppKey"},
            "basic": {"type": "http", "scheme": "basic", "description": "AppKey:AppSecret"},
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at /openapi.json."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pendingtx",
            "version": __version__,
            "description": "Submit batches of pending fund transactions and follow each job to its outcome. "
            "Every answer carries a `requesttrackingid` header; every error answer has the body "
            "`{code, message, trackingId, transient, errors}`. A path that exists answers a method it "
            "does not take with 405 and an `Allow` header; an unknown path answers 404.",
        },
        "paths": {
            "/v2/oauthtoken": {"post": _TOKEN},
            "/v1/jobs/{appName}/status/{key}": {"get": _STATUS},
            "/v1/transactions": {
                "post": _submit(
                    "createTransactions",
                    "Create pending transactions",
                    "One record or an array of 1 to 10,000 (a setting); each record is a PendingTransaction.",
                    "Batch",
                    record="PendingTransaction",
                    examples=_CREATE_EXAMPLES,
                ),
                "get": _LIST,
            },
            "/v1/transactions/{externalId}": {"get": _GET_TRANSACTION, "patch": _MODIFY},
            "/v1/transfers": {
                "post": _submit(
                    "createTransfers",
                    "Create pending transfers",
                    "As /v1/transactions; every record must be a transfer (a PendingTransfer).",
                    "TransferBatch",
                    record="PendingTransfer",
                    examples=_TRANSFER_EXAMPLES,
                )
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness",
                    "parameters": [_REQUEST_TRACKING_ID],
                    "responses": {
                        "200": _json(_ref("Health"), "The service is up."),
                        **_errors("400", "414", "500"),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: the database answers",
                    "parameters": [_REQUEST_TRACKING_ID],
                    "responses": {
                        "200": _json(_ref("Ready"), "The service can serve requests."),
                        **_errors("400", "414", "500", "503"),
                    },
                }
            },
        },
        "components": _components(),
    }


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pendingtx API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The machine-readable description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>
"""
