"""The shapes of the service's JSON answers, as msgspec Structs.

The OpenAPI document's answer schemas are generated from these types (api/openapi/), and the tests
decode real answers into them strictly, so that the document and the answers cannot drift apart.
Field names are the JSON members; their order is the answers' order.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from pendingtx.domain.cursors import CURSOR_LENGTH, CURSOR_PATTERN, PAGE_CURSOR_LENGTH, PAGE_CURSOR_PATTERN
from pendingtx.domain.decimals import MAX_QUANTITY
from pendingtx.domain.job_listing import MAX_RESULTS_LIMIT
from pendingtx.domain.jobs import JobStatus as JobStatusValue
from pendingtx.domain.listing import MAX_LIMIT
from pendingtx.domain.transactions import (
    EXTERNAL_ID_CHARACTERS,
    MAX_COMMENT_LENGTH,
    MAX_ID_LENGTH,
    TransactionStatus,
    TransactionType,
)

# No text the service stores may hold NUL (PostgreSQL cannot store it in text).
NO_NUL = "^[^\\u0000]*$"
ExternalId = Annotated[str, msgspec.Meta(pattern=f"^[{EXTERNAL_ID_CHARACTERS}]{{1,{MAX_ID_LENGTH}}}$")]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_NUL)]
Cursor = Annotated[str, msgspec.Meta(pattern=f"^{CURSOR_PATTERN}$", max_length=CURSOR_LENGTH)]
PageCursor = Annotated[str, msgspec.Meta(pattern=f"^{PAGE_CURSOR_PATTERN}$", max_length=PAGE_CURSOR_LENGTH)]
Digits = Annotated[str, msgspec.Meta(pattern="^[0-9]+$")]
JobKey = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{22}==$", description="16 random bytes")]
# Amounts and units go out as JSON numbers with exactly their stored digits.
Quantity = Annotated[
    Decimal,
    msgspec.Meta(
        description="exactly as stored",
        extra_json_schema={"type": "number", "exclusiveMinimum": 0, "maximum": int(MAX_QUANTITY)},
    ),
]
TrackingId = Annotated[str, msgspec.Meta(extra_json_schema={"format": "uuid"})]
Eastern = Annotated[
    datetime, msgspec.Meta(description="US Eastern offset", extra_json_schema={"format": "date-time"})
]
# The job's status, one of the domain's (a plain string here: JobStatus is this module's answer).
JobState = Annotated[str, msgspec.Meta(extra_json_schema={"enum": [s.value for s in JobStatusValue]})]


class Answer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A JSON answer: no member beyond those listed."""


class ErrorDetail(Answer):
    """One offending input: which field, where it was sent, and what is wrong with it."""

    field: str
    location: Literal["path", "query", "header", "body"]
    reason: str


class Error(Answer):
    """The contract's error body; `requesttrackingid` repeats `trackingId`."""

    code: str
    message: Annotated[str, msgspec.Meta(min_length=1)]
    trackingId: TrackingId
    transient: Annotated[bool, msgspec.Meta(description="true only if the same request may succeed later")]
    errors: list[ErrorDetail]


OAuthErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
]


class OAuthError(Error):
    """The error body of the token endpoints: the contract's members, then RFC 6749's."""

    error: OAuthErrorCode
    error_description: str


class Token(Answer):
    """A new access token (RFC 6749's members first, then SEI's)."""

    access_token: Annotated[str, msgspec.Meta(min_length=43)]
    token_type: Literal["Bearer"]
    expires_in: Annotated[int, msgspec.Meta(ge=1)]
    issued_at: Annotated[Digits, msgspec.Meta(description="milliseconds since the epoch")]
    application_name: str
    status: Literal["approved"]


class Revoked(Answer):
    """A token revoked with `grant_type=invalidate_token`."""

    status: Literal["revoked"]


class JobAccepted(Answer):
    """A job stored durably; its status is at `Location`."""

    jobStatusQueryKey: JobKey
    batchId: Digits


class ValidationDetail(Answer):
    """One problem of one record."""

    index: Annotated[int, msgspec.Meta(ge=0, description="0-based position in the batch")]
    externalId: str | None
    field: Annotated[str, msgspec.Meta(description='the record\'s member, or "" for the record')]
    reason: str


class JobStatus(Answer):
    """A job's status: the four members SEI documents, then the details."""

    status: JobState
    batchId: Digits
    message: str
    validationMessage: list[str]
    recordCount: Annotated[int, msgspec.Meta(ge=0)]
    processedCount: Annotated[int, msgspec.Meta(ge=0)]
    failedCount: Annotated[int, msgspec.Meta(ge=0)]
    submittedAt: Eastern
    completedAt: Eastern | None
    validationDetails: list[ValidationDetail]
    truncated: Annotated[
        bool,
        msgspec.Meta(description="true when the job has more problems than the answer lists (a setting)"),
    ]


class Transaction(Answer, kw_only=True, omit_defaults=True):
    """A stored transaction: a PendingTransaction as the worker accepted it (or as a modification left
    it), with the server's members. Members without a value are left out."""

    externalId: ExternalId
    type: TransactionType
    status: TransactionStatus
    productExternalId: Identifier
    investorExternalId: Identifier
    contactExternalId: Identifier | None = None
    toProductExternalId: Identifier | None = None
    toInvestorExternalId: Identifier | None = None
    amount: Quantity | None = None
    units: Quantity | None = None
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$", description="ISO 4217 alphabetic code")]
    tradeDate: date
    settlementDate: date | None = None
    comments: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT_LENGTH, pattern=NO_NUL)] | None = None
    createDate: Eastern
    changeDate: Eastern


class Results(Answer):
    """The transactions of one page."""

    results: Annotated[list[Transaction], msgspec.Meta(max_length=MAX_LIMIT)]


class Cursors(Answer):
    """Opaque cursors of the page's first and last rows (null on an empty page)."""

    before: Cursor | None
    after: Cursor | None


class PageCursors(Answer):
    """Opaque cursors of the page's first and last rows (null on an empty page), each carrying the
    listing's count."""

    before: PageCursor | None
    after: PageCursor | None


class Paging(Answer):
    """Where the page stands in the listing."""

    totalCount: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            description="rows matching the filters when the listing began: counted for a request "
            "without a cursor, then carried by the cursors to every later page (rows added, removed or "
            "changed since are not counted, but later pages show them)",
        ),
    ]
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)]
    cursors: PageCursors
    next: Annotated[str | None, msgspec.Meta(description="the next page's path and query")]
    previous: Annotated[str | None, msgspec.Meta(description="the previous page's path and query")]


class TransactionPage(Answer):
    """One page of the organization's transactions."""

    data: Results
    paging: Paging


class ListedJob(Answer):
    """A job as the job list shows it: the status body without its problems, with its key and kind."""

    status: JobState
    batchId: Digits
    message: str
    recordCount: Annotated[int, msgspec.Meta(ge=0)]
    processedCount: Annotated[int, msgspec.Meta(ge=0)]
    failedCount: Annotated[int, msgspec.Meta(ge=0)]
    submittedAt: Eastern
    completedAt: Eastern | None
    jobStatusQueryKey: JobKey
    kind: Literal["create", "transfer", "modify"]


class Jobs(Answer):
    """The jobs of one page, newest first."""

    results: Annotated[list[ListedJob], msgspec.Meta(max_length=MAX_LIMIT)]


class JobPage(Answer):
    """One page of the organization's jobs."""

    data: Jobs
    paging: Paging


class RecordProblem(Answer):
    """One reason a record was rejected."""

    field: Annotated[str, msgspec.Meta(description='the record\'s member, or "" for the record')]
    reason: str


class RecordResult(Answer):
    """What became of one submitted record."""

    index: Annotated[int, msgspec.Meta(ge=0, description="0-based position in the batch")]
    externalId: str | None
    outcome: Literal["created", "rejected", "unprocessed"]
    problems: list[RecordProblem]


class RecordResults(Answer):
    """The records of one page, in batch order."""

    results: Annotated[list[RecordResult], msgspec.Meta(max_length=MAX_RESULTS_LIMIT)]


class ResultsPaging(Answer):
    """Where the page stands in the job's results (paged forward only)."""

    totalCount: Annotated[int, msgspec.Meta(ge=0, description="records with the outcome asked for")]
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_RESULTS_LIMIT)]
    cursors: Cursors
    next: Annotated[str | None, msgspec.Meta(description="the next page's path and query")]
    previous: None


class ResultsPage(Answer):
    """One page of a job's per-record results."""

    data: RecordResults
    paging: ResultsPaging


class EventData(Answer):
    """The job as it stood at the transition."""

    jobStatusQueryKey: JobKey
    batchId: Digits
    status: JobState
    recordCount: Annotated[int, msgspec.Meta(ge=0)]
    processedCount: Annotated[int, msgspec.Meta(ge=0)]
    failedCount: Annotated[int, msgspec.Meta(ge=0)]


class Event(Answer):
    """One job transition of the organization's event log."""

    id: Annotated[str, msgspec.Meta(pattern="^evt_[A-Za-z0-9_-]+$")]
    sequence: Annotated[int, msgspec.Meta(ge=1, description="strictly increasing within the organization")]
    type: Literal["job.submitted", "job.started", "job.progress", "job.completed"]
    createdAt: Eastern
    data: EventData


class EventResults(Answer):
    """The page's events, oldest first."""

    results: list[Event]


class EventPaging(Answer):
    """The page size, and the next page's URL when this one is full (else null: nothing more yet)."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=500)]
    next: str | None


class EventPage(Answer):
    """One page of the organization's event log."""

    data: EventResults
    paging: EventPaging


class Health(Answer):
    """The process is up: its id, and whether it runs the embedded worker (one of several may)."""

    status: Literal["ok"]
    process: int
    worker: bool


class Ready(Answer):
    """The process can serve requests: its database answers."""

    status: Literal["ready"]
    database: Literal["ok"]


class AuthorizationServerMetadata(Answer):
    """RFC 8414 metadata: where to get and revoke tokens, and how to authenticate there."""

    issuer: str
    token_endpoint: str
    token_endpoint_auth_methods_supported: list[str]
    grant_types_supported: list[str]
    response_types_supported: list[str]
    revocation_endpoint: str
    revocation_endpoint_auth_methods_supported: list[str]


# Every answer type, for the document's components.
ANSWERS: tuple[type[Answer], ...] = (
    Error,
    OAuthError,
    Token,
    Revoked,
    JobAccepted,
    JobStatus,
    TransactionPage,
    JobPage,
    ResultsPage,
    EventPage,
    Health,
    Ready,
    AuthorizationServerMetadata,
)
