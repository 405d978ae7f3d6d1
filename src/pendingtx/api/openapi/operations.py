"""The operations of /v1 and of the health checks, with their parameters, examples and links."""

from __future__ import annotations

from typing import Any

from pendingtx.api.answers import NO_NUL
from pendingtx.api.openapi.errors import errors_of
from pendingtx.api.openapi.shapes import JSON, MOMENT_PATTERN, TRACKING, header, json_answer, query, ref
from pendingtx.domain.cursors import CURSOR_LENGTH, CURSOR_PATTERN, PAGE_CURSOR_LENGTH, PAGE_CURSOR_PATTERN
from pendingtx.domain.job_listing import DEFAULT_RESULTS_LIMIT, MAX_RESULTS_LIMIT, Outcome
from pendingtx.domain.jobs import JobKind, JobStatus
from pendingtx.domain.listing import DEFAULT_LIMIT, MAX_LIMIT
from pendingtx.domain.transactions import MAX_ID_LENGTH, TransactionStatus, TransactionType
from pendingtx.services.job_status import APP_NAME

V1_SECURITY: list[dict[str, list[str]]] = [{"oauth2": [], "appKey": []}, {"bearer": [], "appKey": []}]

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1-255 visible ASCII characters, given at most once (IETF httpapi idempotency-key "
    "draft). Retrying with the same key and the same request answers with the same job instead of a "
    "new one; the same key with a different request is a 422, and while the first request with the "
    "key is still being stored, a 409.",
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
}

REQUEST_TRACKING_ID = {
    "name": "requesttrackingid",
    "in": "header",
    "required": False,
    "description": "Reused for the answer when it is a UUID; any other value is replaced.",
    "schema": {"type": "string"},
}

_STRING = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": NO_NUL}
_MOMENT = {"type": "string", "pattern": MOMENT_PATTERN}
# Cursors are sealed by the server and written in URL-safe base64 without padding.
_CURSOR = {"type": "string", "pattern": f"^{CURSOR_PATTERN}$", "maxLength": CURSOR_LENGTH}
_PAGE_CURSOR = {"type": "string", "pattern": f"^{PAGE_CURSOR_PATTERN}$", "maxLength": PAGE_CURSOR_LENGTH}
_MOMENT_TEXT = "yyyy-MM-ddTHH:mm:ss.SSS or yyyy-MM-dd, US Eastern time, inclusive"
_CURSOR_NOTE = (
    ". Opaque: only a cursor this listing issued to the organization is valid (else 400); after and "
    "before cannot be combined."
)


def _list_parameters() -> list[dict[str, Any]]:
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    return [
        query("status", "Active or Cancel", {"type": "string", "enum": [s.value for s in TransactionStatus]}),
        query(
            "type",
            "one of the transaction types",
            {"type": "string", "enum": [t.value for t in TransactionType]},
        ),
        query("externalId", "exact externalId", _STRING),
        query("productExternalId", "exact productExternalId", _STRING),
        query("investorExternalId", "exact investorExternalId", _STRING),
        query("contactExternalId", "exact contactExternalId", _STRING),
        query("createStartDate", _MOMENT_TEXT, _MOMENT),
        query("createEndDate", _MOMENT_TEXT + "; not before createStartDate", _MOMENT),
        query("changeStartDate", _MOMENT_TEXT, _MOMENT),
        query("changeEndDate", _MOMENT_TEXT + "; not before changeStartDate", _MOMENT),
        query("limit", "page size", limit),
        query("after", "`paging.cursors.after` of a page: the page after it" + _CURSOR_NOTE, _PAGE_CURSOR),
        query("before", "`paging.cursors.before` of a page: the page before it" + _CURSOR_NOTE, _PAGE_CURSOR),
    ]


# Links: where an answer's values lead (and what schemathesis' stateful tests chain).
_STATUS_LINK = {
    "operationId": "getJobStatus",
    "parameters": {"appName": APP_NAME, "key": "$response.body#/jobStatusQueryKey"},
    "description": "The status of the job this request created.",
}


def _link(operation: str, parameter: str, value: str, description: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": {parameter: value}, "description": description}


def _modify_link(external_id: str, description: str) -> dict[str, Any]:
    return _link("modifyTransaction", "externalId", external_id, description)


_SUBMIT_LINKS = {
    "JobStatus": _STATUS_LINK,
    "ListRecord": _link(
        "listTransactions", "externalId", "$request.body#/externalId", "The record sent alone, once created."
    ),
    "ListFirstRecord": _link(
        "listTransactions",
        "externalId",
        "$request.body#/0/externalId",
        "The batch's first record, once created.",
    ),
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
    "NextPage": _link(
        "listTransactions", "after", "$response.body#/paging/cursors/after", "The page after this one."
    ),
    "PreviousPage": _link(
        "listTransactions", "before", "$response.body#/paging/cursors/before", "The page before this one."
    ),
}

_EXAMPLE_RECORD = {
    "externalId": "PT-1001",
    "type": "New Subscription",
    "productExternalId": "FUND-A",
    "investorExternalId": "INV-1",
    "amount": "2500.00",
    "currency": "USD",
    "tradeDate": "2026-11-27",
}
_EXAMPLE_REDEMPTION = {
    "externalId": "PT-1003",
    "type": "Full Redemption",
    "productExternalId": "FUND-B",
    "investorExternalId": "INV-1",
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
CREATE_EXAMPLES = {
    "record": {"summary": "One record", "value": _EXAMPLE_RECORD},
    "batch": {
        "summary": "A batch",
        "value": [{**_EXAMPLE_RECORD, "externalId": "PT-1002"}, _EXAMPLE_REDEMPTION],
    },
}
TRANSFER_EXAMPLES = {"record": {"summary": "One transfer", "value": _EXAMPLE_TRANSFER}}


def _accepted(description: str, links: dict[str, Any]) -> dict[str, Any]:
    return {**json_answer(ref("JobAccepted"), description, Location=header("Location")), "links": links}


def submit(
    operation_id: str, summary: str, description: str, batch: str, *, record: str, examples: dict[str, Any]
) -> dict[str, Any]:
    """A POST of a batch (to /v1/transactions or /v1/transfers)."""
    state = query(
        "state", "the only valid value is `pending`; at most once", {"type": "string", "enum": ["pending"]}
    )
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "security": V1_SECURITY,
        "parameters": [state, IDEMPOTENCY_KEY, REQUEST_TRACKING_ID],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref(batch), "examples": examples}}},
        "responses": {
            "202": _accepted(
                "The batch is stored durably as one job; the worker then creates each record or "
                f"rejects it by the rules of {record}.",
                _SUBMIT_LINKS,
            ),
            **errors_of(400, 401, 403, 409, 413, 414, 415, 422, 429, 500, 503),
        },
    }


LIST: dict[str, Any] = {
    "operationId": "listTransactions",
    "summary": "List the organization's transactions",
    "description": "Filters combine with AND; pages follow creation order. `paging.totalCount` is "
    "counted for a request without a cursor and carried by the page's cursors to the pages they lead "
    "to: it is the count when the listing began (a cursor used with other filters is counted afresh). "
    "A repeated or unknown parameter, a range that ends before it starts, or `after` together with "
    "`before` is a 400.",
    "security": V1_SECURITY,
    "parameters": [*_list_parameters(), REQUEST_TRACKING_ID],
    "responses": {
        "200": {**json_answer(ref("TransactionPage"), "One page of transactions."), "links": _LIST_LINKS},
        **errors_of(400, 401, 403, 414, 429, 500, 503),
    },
}


_EXTERNAL_ID: dict[str, Any] = {
    "name": "externalId",
    "in": "path",
    "required": True,
    "description": "an externalId of the caller's organization",
    "schema": {"type": "string", "minLength": 1, "pattern": NO_NUL},
}

GET_TRANSACTION: dict[str, Any] = {
    "operationId": "getTransaction",
    "summary": "Read one transaction",
    "description": "The transaction as the list shows it. An externalId the caller's organization "
    "does not have is a 404, whether or not another organization has it.",
    "security": V1_SECURITY,
    "parameters": [_EXTERNAL_ID, REQUEST_TRACKING_ID],
    "responses": {
        "200": json_answer(ref("Transaction"), "The transaction."),
        **errors_of(400, 401, 403, 404, 414, 429, 500, 503),
    },
}

MODIFY: dict[str, Any] = {
    "operationId": "modifyTransaction",
    "summary": "Modify or cancel a transaction",
    "description": "JSON Patch (RFC 6902) or merge patch (RFC 7396), applied by the worker. Setting "
    "status to Cancel cancels; externalId, createDate and changeDate cannot change; a cancelled "
    "transaction cannot be modified.",
    "security": V1_SECURITY,
    "parameters": [
        _EXTERNAL_ID,
        IDEMPOTENCY_KEY,
        REQUEST_TRACKING_ID,
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json-patch+json": {
                "schema": ref("JsonPatch"),
                # `add` sets a member whether or not the transaction has it yet; `replace` needs it.
                "example": [{"op": "add", "path": "/comments", "value": "confirmed by phone"}],
            },
            "application/merge-patch+json": {"schema": ref("MergePatch"), "example": {"status": "Cancel"}},
            JSON: {"schema": ref("MergePatch")},
        },
    },
    "responses": {
        "202": _accepted("The modification is stored durably as one job.", _MODIFY_LINKS),
        **errors_of(400, 401, 403, 404, 409, 413, 414, 415, 422, 429, 500, 503),
    },
}

STATUS: dict[str, Any] = {
    "operationId": "getJobStatus",
    "summary": "Status of a job",
    "security": V1_SECURITY,
    "parameters": [
        {"name": "appName", "in": "path", "required": True, "schema": {"type": "string", "enum": [APP_NAME]}},
        {
            "name": "key",
            "in": "path",
            "required": True,
            "description": "a jobStatusQueryKey; one of another organization is answered as unknown (404)",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_=+-]{1,128}$"},
        },
        REQUEST_TRACKING_ID,
    ],
    "responses": {
        "200": json_answer(
            ref("JobStatus"),
            "The job's status; while it is not final, `Retry-After` says when to poll again.",
            **{"Retry-After": header("Retry-After-Hint")},
        ),
        **errors_of(400, 401, 403, 404, 410, 414, 429, 500, 503),
    },
}


_APP_NAME = {
    "name": "appName",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": [APP_NAME]},
}
_JOB_KEY = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": "a jobStatusQueryKey; one of another organization is answered as unknown (404)",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_=+-]{1,128}$"},
}


def _job_list_parameters() -> list[dict[str, Any]]:
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    return [
        _APP_NAME,
        query("status", "one of the job statuses", {"type": "string", "enum": [s.value for s in JobStatus]}),
        query("kind", "what the job does", {"type": "string", "enum": [k.value for k in JobKind]}),
        query("submittedStart", _MOMENT_TEXT, _MOMENT),
        query("submittedEnd", _MOMENT_TEXT + "; not before submittedStart", _MOMENT),
        query("limit", "page size", limit),
        query(
            "after", "`paging.cursors.after` of a page: the older jobs after it" + _CURSOR_NOTE, _PAGE_CURSOR
        ),
        query(
            "before",
            "`paging.cursors.before` of a page: the newer jobs before it" + _CURSOR_NOTE,
            _PAGE_CURSOR,
        ),
        REQUEST_TRACKING_ID,
    ]


LIST_JOBS: dict[str, Any] = {
    "operationId": "listJobs",
    "summary": "List the organization's jobs",
    "description": "Newest first; filters combine with AND. Each job is its status body without "
    "`validationMessage`, `validationDetails` and `truncated`, plus its `jobStatusQueryKey` and "
    "`kind`. `paging.totalCount` counts at most 10,000 jobs, when the listing began (as the "
    "transaction list's). A repeated or unknown parameter, a range that ends before it starts, or "
    "`after` together with `before` is a 400.",
    "security": V1_SECURITY,
    "parameters": _job_list_parameters(),
    "responses": {
        "200": {
            **json_answer(ref("JobPage"), "One page of jobs."),
            "links": {
                "NextPage": _link(
                    "listJobs", "after", "$response.body#/paging/cursors/after", "The older jobs."
                ),
                "FirstJobStatus": {
                    "operationId": "getJobStatus",
                    "parameters": {
                        "appName": APP_NAME,
                        "key": "$response.body#/data/results/0/jobStatusQueryKey",
                    },
                    "description": "The first listed job's status.",
                },
            },
        },
        **errors_of(400, 401, 403, 414, 429, 500, 503),
    },
}

CANCEL_JOB: dict[str, Any] = {
    "operationId": "cancelJob",
    "summary": "Cancel a job",
    "description": "A `Submitted` job becomes `Cancelled` at once; an `In Progress` job stops at its "
    "next chunk and becomes `Cancelled` (records applied before stay applied, and the counts say "
    "so). The answer is the job's status body as it stands. Cancelling a job again while it is "
    "still stopping answers the same way; a job that has finished is a 409.",
    "security": V1_SECURITY,
    "parameters": [_APP_NAME, _JOB_KEY, REQUEST_TRACKING_ID],
    "responses": {
        "202": json_answer(ref("JobStatus"), "The cancel is recorded; the job's status body."),
        **errors_of(400, 401, 403, 404, 410, 414, 429, 500, 503, variants=("AlreadyFinished",)),
    },
}

JOB_RESULTS: dict[str, Any] = {
    "operationId": "getJobResults",
    "summary": "Per-record results of a job",
    "description": "One row per submitted record, in batch order: `created`, `rejected` (with its "
    "problems, at most 20 per record) or `unprocessed` (the job failed or was cancelled before "
    "reaching it, or has not reached it yet). With `Accept: text/csv` the whole result (of the "
    "outcome asked for) is streamed as CSV with the header `index,externalId,outcome,field,reason`: "
    "one line per problem, one line with empty field and reason for a record without any.",
    "security": V1_SECURITY,
    "parameters": [
        _APP_NAME,
        _JOB_KEY,
        query(
            "outcome",
            "only records with this outcome",
            {"type": "string", "enum": [o.value for o in Outcome]},
        ),
        query(
            "limit",
            "page size",
            {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS_LIMIT, "default": DEFAULT_RESULTS_LIMIT},
        ),
        query("after", "`paging.cursors.after` of a page: the records after it" + _CURSOR_NOTE, _CURSOR),
        REQUEST_TRACKING_ID,
    ],
    "responses": {
        "200": {
            "description": "One page of results (JSON), or all of them (CSV).",
            "headers": dict(TRACKING),
            "content": {
                JSON: {"schema": ref("ResultsPage")},
                "text/csv": {"schema": {"type": "string"}},
            },
            "links": {
                "NextPage": _link(
                    "getJobResults",
                    "after",
                    "$response.body#/paging/cursors/after",
                    "The records after these.",
                ),
            },
        },
        **errors_of(400, 401, 403, 404, 410, 414, 429, 500, 503),
    },
}


def health(operation_id: str, summary: str, answer: str, description: str, *statuses: int) -> dict[str, Any]:
    """A health check's operation (no authentication)."""
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [REQUEST_TRACKING_ID],
        "responses": {"200": json_answer(ref(answer), description), **errors_of(400, 414, *statuses)},
    }
