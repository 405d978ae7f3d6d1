"""What the API answers, as typed values: job references, job statuses and transactions.

Amounts and units are `Decimal`, read from the JSON text digit for digit (never through a float).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

import httpx
import msgspec

from pendingtx_client._errors import unexpected

_T = TypeVar("_T")


class JobState(StrEnum):
    """A job's status, spelt as the server sends it.

    A status this client does not know (from a newer server) reads as `UNKNOWN`, which is not
    terminal, so `Client.wait` keeps polling until its deadline; `JobStatus.message` still
    starts with the server's own word for it.
    """

    SUBMITTED = "Submitted"
    IN_PROGRESS = "In Progress"
    COMPLETED = "Completed"
    PARTIALLY_COMPLETED = "Partially Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    UNKNOWN = "Unknown"

    @classmethod
    def _missing_(cls, value: object) -> JobState:
        return cls.UNKNOWN

    @property
    def terminal(self) -> bool:
        """True for the four statuses that never change again."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.COMPLETED, JobState.PARTIALLY_COMPLETED, JobState.FAILED, JobState.CANCELLED})


class JobRef(msgspec.Struct, frozen=True, rename="camel"):
    """The answer to a submission: the job's status key and its batch id."""

    key: str = msgspec.field(name="jobStatusQueryKey")
    batch_id: str


class ValidationDetail(msgspec.Struct, frozen=True, rename="camel"):
    """One rejected record (or field of it): its index in the batch, externalId, field and reason."""

    index: int | None = None
    external_id: str | None = None
    field: str = ""
    reason: str = ""


class JobStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A job's status; `Failed` and `Partially Completed` are results like `Completed`."""

    status: JobState
    batch_id: str
    message: str
    validation_messages: tuple[str, ...] = ()
    record_count: int | None = None
    processed_count: int | None = None
    failed_count: int | None = None
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    details: tuple[ValidationDetail, ...] = ()
    # True when the job had more problems than the answer listed in `details`.
    truncated: bool = False

    @property
    def terminal(self) -> bool:
        """True when the job is finished (Completed, Partially Completed, Failed or Cancelled)."""
        return self.status.terminal


class Transaction(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A pending transaction in the contract's fields; `create_date`/`change_date` are set by the server.

    Also usable as a record to submit: members that are None, and the two server-set dates, are not sent.
    """

    # In the contract's order (keyword-only, so required members may follow optional ones).
    external_id: str
    type: str
    status: str = "Active"
    product_external_id: str
    investor_external_id: str
    contact_external_id: str | None = None
    to_product_external_id: str | None = None
    to_investor_external_id: str | None = None
    amount: Decimal | None = None
    units: Decimal | None = None
    currency: str = "USD"
    trade_date: date
    settlement_date: date | None = None
    comments: str | None = None
    create_date: datetime | None = None
    change_date: datetime | None = None

    def to_json(self) -> dict[str, object]:
        """The contract's JSON members (camelCase) that are not None; amounts and units stay Decimal."""
        members: dict[str, object] = msgspec.to_builtins(self, builtin_types=(Decimal,))
        return {name: value for name, value in members.items() if value is not None}


SERVER_SET = ("createDate", "changeDate")


class JobSummary(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A job as `Client.jobs` lists it: its status without the problems, its key and its kind."""

    status: JobState
    batch_id: str
    message: str
    record_count: int | None = None
    processed_count: int | None = None
    failed_count: int | None = None
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    key: str = msgspec.field(name="jobStatusQueryKey")
    kind: str = ""

    @property
    def terminal(self) -> bool:
        """True when the job is finished."""
        return self.status.terminal


class RecordProblem(msgspec.Struct, frozen=True):
    """One reason a record was rejected."""

    field: str = ""
    reason: str = ""


class RecordResult(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What became of one submitted record: `created`, `rejected` (with its problems) or `unprocessed`."""

    index: int
    external_id: str | None = None
    outcome: str
    problems: tuple[RecordProblem, ...] = ()


class _StatusBody(msgspec.Struct, rename="camel"):
    # `status` stays text here so that an unknown value becomes JobState.UNKNOWN, not an error.
    status: str
    batch_id: str
    message: str = ""
    validation_message: tuple[str, ...] = ()
    record_count: int | None = None
    processed_count: int | None = None
    failed_count: int | None = None
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    validation_details: tuple[ValidationDetail, ...] = ()
    truncated: bool = False


class _Cursors(msgspec.Struct):
    before: str | None = None
    after: str | None = None


class _Paging(msgspec.Struct, rename="camel"):
    total_count: int | None = None
    limit: int | None = None
    cursors: _Cursors = msgspec.field(default_factory=_Cursors)
    next: str | None = None
    previous: str | None = None


class _Results(msgspec.Struct):
    results: list[Transaction]


class _Page(msgspec.Struct, frozen=True):
    """One page of a listing: its transactions, and the link to the next page (None on the last)."""

    data: _Results
    paging: _Paging = msgspec.field(default_factory=_Paging)


class _JobResults(msgspec.Struct):
    results: list[JobSummary]


class _JobPage(msgspec.Struct, frozen=True):
    data: _JobResults
    paging: _Paging = msgspec.field(default_factory=_Paging)


class _RecordResults(msgspec.Struct):
    results: list[RecordResult]


class _ResultsPage(msgspec.Struct, frozen=True):
    data: _RecordResults
    paging: _Paging = msgspec.field(default_factory=_Paging)


def _decode(response: httpx.Response, kind: type[_T], what: str) -> _T:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except msgspec.DecodeError as exc:
        raise unexpected(response, what, exc) from None


def job_ref(response: httpx.Response) -> JobRef:
    """The job reference of a 202 answer."""
    return _decode(response, JobRef, "a job reference")


def job_status(response: httpx.Response) -> JobStatus:
    """The job status of a 200 status answer."""
    body = _decode(response, _StatusBody, "a job status")
    return JobStatus(
        status=JobState(body.status),
        batch_id=body.batch_id,
        message=body.message,
        validation_messages=body.validation_message,
        record_count=body.record_count,
        processed_count=body.processed_count,
        failed_count=body.failed_count,
        submitted_at=body.submitted_at,
        completed_at=body.completed_at,
        details=body.validation_details,
        truncated=body.truncated,
    )


def transaction(response: httpx.Response) -> Transaction:
    """The transaction of a 200 answer to GET /v1/transactions/{externalId}."""
    return _decode(response, Transaction, "a transaction")


def page(response: httpx.Response) -> _Page:
    """One page of a transaction listing."""
    return _decode(response, _Page, "a transaction listing")


def job_page(response: httpx.Response) -> tuple[list[JobSummary], str | None]:
    """One page of the job list, and the path of the next page (None on the last)."""
    found = _decode(response, _JobPage, "a job listing")
    return found.data.results, found.paging.next


def results_page(response: httpx.Response) -> tuple[list[RecordResult], str | None]:
    """One page of a job's results, and the path of the next page (None on the last)."""
    found = _decode(response, _ResultsPage, "a job's results")
    return found.data.results, found.paging.next
