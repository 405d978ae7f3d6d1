"""The service's own OpenAPI 3.1 description, and the page that renders it at /docs."""

from __future__ import annotations

from typing import Any

from pendingtx import __version__
from pendingtx.domain.jobs import JobStatus
from pendingtx.domain.transactions import TransactionType

_ERROR_STATUSES = {
    "400": "The request is malformed: see `errors` for each offending field.",
    "401": "Missing, unknown, revoked or expired token; wrong or disabled AppKey.",
    "403": "The application is not entitled to this product, or the caller's address is not allowed.",
    "404": "Unknown route, job key or transaction (another organization's keys are never revealed).",
    "405": "The route does not accept this method.",
    "413": "The body is over the size limit.",
    "414": "The URL is longer than 2048 characters.",
    "415": "Unsupported Content-Type.",
    "500": "An unexpected failure; the body never carries a stack trace.",
    "503": "The database is unreachable; retry after `Retry-After` seconds.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: str) -> dict[str, Any]:
    return {
        s: {
            "description": _ERROR_STATUSES[s],
            "headers": {"requesttrackingid": {"$ref": "#/components/headers/requesttrackingid"}},
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for s in statuses
    }


def _json(schema: dict[str, Any], description: str, **headers: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    answer["headers"] = {"requesttrackingid": {"$ref": "#/components/headers/requesttrackingid"}, **headers}
    return answer


_STRING_64 = {"type": "string", "minLength": 1, "maxLength": 64}
_DECIMAL = {"oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}]}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["code", "message", "trackingId", "transient", "errors"],
        "properties": {
            "code": {"type": "string", "examples": ["request.validation.failure"]},
            "message": {"type": "string"},
            "trackingId": {"type": "string", "format": "uuid"},
            "transient": {"type": "boolean"},
            "errors": {"type": "array", "items": _ref("ErrorDetail")},
            "error": {"type": "string", "description": "RFC 6749 error code (token endpoint only)"},
            "error_description": {"type": "string", "description": "token endpoint only"},
        },
    },
    "ErrorDetail": {
        "type": "object",
        "required": ["field", "location", "reason"],
        "properties": {
            "field": {"type": "string"},
            "location": {"type": "string", "enum": ["path", "query", "header", "body"]},
            "reason": {"type": "string"},
        },
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "issued_at", "application_name", "status"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "const": "Bearer"},
            "expires_in": {"type": "integer"},
            "issued_at": {"type": "string", "description": "milliseconds since the epoch"},
            "application_name": {"type": "string"},
            "status": {"type": "string", "const": "approved"},
        },
    },
    "Revoked": {"type": "object", "properties": {"status": {"type": "string", "const": "revoked"}}},
    "JobAccepted": {
        "type": "object",
        "required": ["jobStatusQueryKey", "batchId"],
        "properties": {"jobStatusQueryKey": {"type": "string"}, "batchId": {"type": "string"}},
    },
    "JobStatus": {
        "type": "object",
        "required": ["status", "batchId", "message", "validationMessage"],
        "properties": {
            "status": {"type": "string", "enum": [s.value for s in JobStatus]},
            "batchId": {"type": "string"},
            "message": {"type": "string"},
            "validationMessage": {"type": "array", "items": {"type": "string"}},
            "recordCount": {"type": "integer"},
            "processedCount": {"type": "integer"},
            "failedCount": {"type": "integer"},
            "submittedAt": {"type": "string", "format": "date-time"},
            "completedAt": {"type": ["string", "null"], "format": "date-time"},
            "validationDetails": {"type": "array", "items": _ref("ValidationDetail")},
        },
    },
    "ValidationDetail": {
        "type": "object",
        "properties": {
            "index": {"type": "integer", "description": "0-based position in the submitted batch"},
            "externalId": {"type": ["string", "null"]},
            "field": {"type": "string"},
            "reason": {"type": "string"},
        },
    },
    "PendingTransaction": {
        "type": "object",
        "additionalProperties": False,
        "required": ["externalId", "type", "productExternalId", "investorExternalId", "tradeDate"],
        "properties": {
            "externalId": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
            "type": {"type": "string", "enum": [t.value for t in TransactionType]},
            "status": {"type": "string", "enum": ["Active", "Cancel"], "default": "Active"},
            "productExternalId": _STRING_64,
            "investorExternalId": _STRING_64,
            "contactExternalId": _STRING_64,
            "toProductExternalId": _STRING_64,
            "toInvestorExternalId": _STRING_64,
            "amount": {**_DECIMAL, "description": "> 0, at most 2 decimal places, at most 10^13"},
            "units": {**_DECIMAL, "description": "> 0, at most 6 decimal places"},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "USD"},
            "tradeDate": {"type": "string", "format": "date"},
            "settlementDate": {"type": "string", "format": "date"},
            "comments": {"type": "string", "maxLength": 500},
        },
    },
    "Transaction": {
        "allOf": [_ref("PendingTransaction")],
        "properties": {
            "createDate": {"type": "string", "format": "date-time", "description": "US Eastern offset"},
            "changeDate": {"type": "string", "format": "date-time", "description": "US Eastern offset"},
        },
    },
    "TransactionPage": {
        "type": "object",
        "required": ["data", "paging"],
        "properties": {
            "data": {
                "type": "object",
                "properties": {"results": {"type": "array", "items": _ref("Transaction")}},
            },
            "paging": {
                "type": "object",
                "properties": {
                    "totalCount": {"type": "integer"},
                    "limit": {"type": "integer"},
                    "cursors": {
                        "type": "object",
                        "properties": {
                            "before": {"type": ["string", "null"]},
                            "after": {"type": ["string", "null"]},
                        },
                    },
                    "next": {"type": ["string", "null"]},
                    "previous": {"type": ["string", "null"]},
                },
            },
        },
    },
    "JsonPatch": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["op", "path"],
            "properties": {
                "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
                "path": {"type": "string"},
                "from": {"type": "string"},
                "value": {},
            },
        },
    },
    "Batch": {
        "oneOf": [
            _ref("PendingTransaction"),
            {"type": "array", "minItems": 1, "maxItems": 10000, "items": _ref("PendingTransaction")},
        ]
    },
}

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retrying with the same key and request answers with the same job instead of a new one.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

_V1_SECURITY: list[dict[str, list[str]]] = [{"bearer": [], "appKey": []}]
_RETRY_AFTER = {"description": "seconds to wait before polling again", "schema": {"type": "integer"}}


def _submit(summary: str, description: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "security": _V1_SECURITY,
        "parameters": [
            {
                "name": "state",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["pending"]},
            },
            _IDEMPOTENCY_KEY,
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Batch")}}},
        "responses": {
            "202": _json(
                _ref("JobAccepted"),
                "The batch is stored durably as one job.",
                Location={"description": "the job's status URL", "schema": {"type": "string"}},
            ),
            **_errors("400", "401", "403", "413", "414", "415", "500", "503"),
        },
    }


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


_DATE = "yyyy-MM-ddTHH:mm:ss.SSS or yyyy-MM-dd, US Eastern time, inclusive"
_LIST_PARAMETERS = [
    _query("status", "Active or Cancel", enum=["Active", "Cancel"]),
    _query("type", "one of the transaction types", enum=[t.value for t in TransactionType]),
    _query("externalId", "exact externalId"),
    _query("productExternalId", "exact productExternalId"),
    _query("investorExternalId", "exact investorExternalId"),
    _query("contactExternalId", "exact contactExternalId"),
    _query("createStartDate", _DATE),
    _query("createEndDate", _DATE),
    _query("changeStartDate", _DATE),
    _query("changeEndDate", _DATE),
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 25},
    },
    _query("after", "cursor: rows after this one"),
    _query("before", "cursor: rows before this one"),
]

_TRANSACTIONS_PATH: dict[str, Any] = {
    "get": {
        "summary": "List the organization's transactions",
        "description": "Filters combine with AND; pages follow creation order.",
        "security": _V1_SECURITY,
        "parameters": _LIST_PARAMETERS,
        "responses": {
            "200": _json(_ref("TransactionPage"), "One page of transactions."),
            **_errors("400", "401", "403", "414", "500", "503"),
        },
    },
}

_MODIFY_PATH: dict[str, Any] = {
    "patch": {
        "summary": "Modify or cancel a transaction",
        "description": "JSON Patch (RFC 6902) or merge patch (RFC 7396). Setting status to Cancel cancels; "
        "externalId, createDate and changeDate cannot change; a cancelled transaction cannot be modified.",
        "security": _V1_SECURITY,
        "parameters": [
            {"name": "externalId", "in": "path", "required": True, "schema": {"type": "string"}},
            _IDEMPOTENCY_KEY,
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json-patch+json": {"schema": _ref("JsonPatch")},
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        "responses": {
            "202": _json(
                _ref("JobAccepted"),
                "The modification is stored durably as one job.",
                Location={"description": "the job's status URL", "schema": {"type": "string"}},
            ),
            **_errors("400", "401", "403", "404", "413", "414", "415", "500", "503"),
        },
    }
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at /openapi.json."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pendingtx",
            "version": __version__,
            "description": "Submit batches of pending fund transactions and follow each job to its outcome.",
        },
        "paths": {
            "/v2/oauthtoken": {
                "post": {
                    "summary": "Mint or revoke an access token",
                    "description": "Client authentication with HTTP Basic (AppKey:AppSecret) or form fields. "
                    "`grant_type=client_credentials` mints; `grant_type=invalidate_token&token=...` revokes.",
                    "security": [{"basic": []}, {}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["grant_type"],
                                    "properties": {
                                        "grant_type": {
                                            "type": "string",
                                            "enum": ["client_credentials", "invalidate_token"],
                                        },
                                        "token": {"type": "string"},
                                        "client_id": {"type": "string"},
                                        "client_secret": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {"oneOf": [_ref("Token"), _ref("Revoked")]},
                            "A new token (or the confirmation of a revocation).",
                        ),
                        **_errors("400", "401", "413", "414", "415", "500", "503"),
                    },
                }
            },
            "/v1/jobs/{appName}/status/{key}": {
                "get": {
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
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_=+-]{1,128}$"},
                        },
                    ],
                    "responses": {
                        "200": _json(_ref("JobStatus"), "The job's status.", **{"Retry-After": _RETRY_AFTER}),
                        **_errors("400", "401", "403", "404", "414", "500", "503"),
                    },
                }
            },
            "/v1/transactions": {
                "post": _submit("Create pending transactions", "One record or an array of 1 to 10,000."),
                **_TRANSACTIONS_PATH,
            },
            "/v1/transactions/{externalId}": _MODIFY_PATH,
            "/v1/transfers": {
                "post": _submit(
                    "Create pending transfers", "As /v1/transactions; every record must be a transfer."
                )
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": _json({"type": "object"}, "The service is up.")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: the database answers",
                    "responses": {
                        "200": _json({"type": "object"}, "The service can serve requests."),
                        **_errors("500", "503"),
                    },
                }
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "headers": {
                "requesttrackingid": {
                    "description": "Equals the error body's trackingId; a UUID sent by the client is reused.",
                    "schema": {"type": "string", "format": "uuid"},
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "appKey": {"type": "apiKey", "in": "header", "name": "AppKey"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
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
