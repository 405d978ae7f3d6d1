"""A job's results (contract 7.4): one row per submitted record, created, rejected (with its
problems) or unprocessed, paged by record index or streamed whole as CSV.

Outcomes are derived, not stored: a record with problems was rejected; one before the job's
committed `processed_count` without problems was created; the rest were not processed. The
externalIds of records without problems come from the stored batch, read once per page (or once per
CSV stream, whose pages of problems are then read one at a time).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
import sqlalchemy as sa

from pendingtx import errors
from pendingtx.domain import listing
from pendingtx.domain.cursors import ListingCursors, ListKind
from pendingtx.domain.job_listing import (
    RESULT_FILTERS,
    Outcome,
    ResultsQuery,
    outcome_of,
    parse_results_query,
)
from pendingtx.domain.jobs import LABEL_LIMIT, JobKind, RecordProblem
from pendingtx.services.authentication import Caller
from pendingtx.services.cancellation import missing
from pendingtx.services.errors import PoisonedPayload
from pendingtx.services.job_status import check_path
from pendingtx.services.processing import split_records
from pendingtx.storage import job_pages
from pendingtx.storage.jobs import JobRecord
from pendingtx.storage.server_keys import ServerKeys
from pendingtx.storage.unit_of_work import UnitOfWork

RESULTS_PATH = "/v1/jobs/{appName}/results/{key}"
CSV_HEADER = ("index", "externalId", "outcome", "field", "reason")
# Records per page read while streaming CSV.
CSV_PAGE = 1000


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One submitted record's outcome."""

    index: int
    external_id: str | None
    outcome: Outcome
    problems: list[RecordProblem] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The contract's JSON form."""
        return {
            "index": self.index,
            "externalId": self.external_id,
            "outcome": self.outcome.value,
            "problems": [{"field": p.field, "reason": p.reason} for p in self.problems],
        }


class _Named(msgspec.Struct):
    externalId: Any = None


@cache
def _named_decoder() -> msgspec.json.Decoder[_Named]:
    return msgspec.json.Decoder(_Named)


class ResultSource:
    """A job's results, read a page at a time: the job and its stored batch, split once."""

    def __init__(self, found: job_pages.ResultJob) -> None:
        self.job = found.job
        self._target = found.target
        # The stored batch, split into records: read once, the first time a record without problems
        # needs its externalId (a page of rejected records never reads it).
        self._records: list[msgspec.Raw] | None = None

    def _batch(self, conn: sa.Connection) -> list[msgspec.Raw]:
        if self._records is None:
            try:
                self._records = split_records(job_pages.payload_of(conn, self.job.id))
            except PoisonedPayload:
                self._records = []
        return self._records

    def external_id(self, conn: sa.Connection, index: int) -> str | None:
        """The externalId the record was submitted with (None when it had none to read)."""
        if self.job.kind is JobKind.MODIFY:
            return self._target
        records = self._batch(conn)
        if index >= len(records):
            return None
        try:
            value = _named_decoder().decode(records[index]).externalId
        except msgspec.MsgspecError:
            return None
        return value[:LABEL_LIMIT] if isinstance(value, str) else None

    def total(self, outcome: Outcome | None) -> int:
        """How many records have this outcome (all of them for None)."""
        job = self.job
        return {
            None: job.record_count,
            Outcome.REJECTED: job.failed_count,
            Outcome.CREATED: job.processed_count - job.failed_count,
            Outcome.UNPROCESSED: job.record_count - job.processed_count,
        }[outcome]

    def page(
        self, conn: sa.Connection, *, start: int, limit: int, outcome: Outcome | None
    ) -> list[ResultRow]:
        """Up to `limit` rows of this outcome from record `start` on, in record order (one more when
        there are more: the caller trims it)."""
        job = self.job
        n, processed = job.record_count, job.processed_count
        if outcome is Outcome.REJECTED:
            indexes = job_pages.rejected_from(conn, job.id, start, limit + 1)
        elif outcome is Outcome.UNPROCESSED:
            low = max(start, processed)
            indexes = list(range(low, min(low + limit + 1, n)))
        elif outcome is Outcome.CREATED:
            indexes = self._created(conn, start, limit + 1)
        else:
            indexes = list(range(start, min(start + limit + 1, n)))
        return self._rows(conn, indexes)

    def _created(self, conn: sa.Connection, start: int, wanted: int) -> list[int]:
        job = self.job
        found: list[int] = []
        low = start
        # Windows of twice the page: at most a few when rejections are dense, one when they are rare.
        while len(found) < wanted and low < job.processed_count:
            high = min(low + 2 * wanted, job.processed_count)
            rejected = job_pages.rejected_between(conn, job.id, low, high) if job.failed_count else set()
            found.extend(i for i in range(low, high) if i not in rejected)
            low = high
        return found[:wanted]

    def _rows(self, conn: sa.Connection, indexes: Sequence[int]) -> list[ResultRow]:
        if not indexes:
            return []
        job = self.job
        by_index: dict[int, list[RecordProblem]] = {}
        if job.failed_count:
            for problem in job_pages.problems_between(conn, job.id, indexes[0], indexes[-1] + 1):
                by_index.setdefault(problem.index, []).append(problem)
        rows = []
        for index in indexes:
            problems = by_index.get(index, [])
            outcome = outcome_of(index, rejected=bool(problems), processed_count=job.processed_count)
            external_id = problems[0].external_id if problems else self.external_id(conn, index)
            rows.append(ResultRow(index, external_id, outcome, problems))
        return rows


@dataclass(frozen=True, slots=True)
class ResultsPage:
    """One page of a job's results and the paging member, with the job as it was read."""

    rows: list[ResultRow]
    paging: listing.Paging
    job: JobRecord


def _source(conn: sa.Connection, caller: Caller, key: str) -> ResultSource:
    found = job_pages.for_results(conn, caller.org_id, key)
    if found is None:
        raise missing(conn, caller.org_id, key)
    return ResultSource(found)


def find_job(uow: UnitOfWork, caller: Caller, app_name: str, key: str) -> JobRecord:
    """The caller's job `key` as the status endpoint shows it (404/410 for a missing job)."""
    check_path(app_name, key)
    with uow.read() as conn:
        return _source(conn, caller, key).job


def _query(
    caller: Caller, app_name: str, key: str, params: Sequence[tuple[str, str]], keys: ServerKeys
) -> tuple[ResultsQuery, ListingCursors]:
    check_path(app_name, key)
    cursors = keys.cursor_key().for_listing(ListKind.JOB_RESULTS, caller.org_id)
    query = parse_results_query(params, cursors)
    if isinstance(query, list):
        raise errors.ValidationFailed(errors=[errors.ErrorDetail(p.field, "query", p.reason) for p in query])
    return query, cursors


def results_page(
    uow: UnitOfWork,
    caller: Caller,
    app_name: str,
    key: str,
    params: Sequence[tuple[str, str]],
    *,
    keys: ServerKeys,
) -> ResultsPage:
    """The page of the caller's job's results the query asks for (404/410 for a missing job)."""
    query, cursors = _query(caller, app_name, key, params, keys)
    # A cursor stands for the next record's index plus one (positions start at 1).
    start = query.after - 1 if query.after is not None else 0
    with uow.read() as conn:
        source = _source(conn, caller, key)
        found = source.page(conn, start=start, limit=query.limit, outcome=query.outcome)
    rows = found[: query.limit]
    more = len(found) > query.limit
    after = cursors.seal(rows[-1].index + 2) if rows and more else None
    path = RESULTS_PATH.format(appName=app_name, key=key)
    given = [(name, value) for name in RESULT_FILTERS for named, value in params if named == name]
    base = [*given, ("limit", str(query.limit))]
    paging = listing.Paging(
        total_count=source.total(query.outcome),
        limit=query.limit,
        before_cursor=None,
        after_cursor=after,
        next=listing.link(path, [*base, ("after", after)]) if after else None,
        previous=None,
    )
    return ResultsPage(rows, paging, source.job)


class CsvResults:
    """A job's whole results as CSV lines, produced a page of records at a time.

    `open` finds the job (raising 400/404/410 before any byte is sent); each `next_chunk` reads one
    page of problems in a read transaction of its own and returns its CSV text, "" at the end.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        caller: Caller,
        app_name: str,
        key: str,
        params: Sequence[tuple[str, str]],
        *,
        keys: ServerKeys,
    ) -> None:
        self._uow = uow
        self._caller = caller
        self._key = key
        self._query, _ = _query(caller, app_name, key, params, keys)
        self._source: ResultSource | None = None
        self._start = 0
        self._done = False

    def open(self) -> None:
        """Find the job; raises when the caller has no such job."""
        with self._uow.read() as conn:
            self._source = _source(conn, self._caller, self._key)

    def next_chunk(self) -> str:
        """The CSV text of the next page of records (the header first), or "" once all are out."""
        source = self._source
        assert source is not None, "open() first"
        if self._done:
            return ""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        if self._start == 0:
            writer.writerow(CSV_HEADER)
        with self._uow.read() as conn:
            rows = source.page(conn, start=self._start, limit=CSV_PAGE, outcome=self._query.outcome)
        page = rows[:CSV_PAGE]
        if len(rows) <= CSV_PAGE:
            self._done = True
        if page:
            self._start = page[-1].index + 1
        for row in page:
            write_csv_row(writer, row)
        return out.getvalue()


def write_csv_row(writer: Any, row: ResultRow) -> None:
    """One line per problem; one line with empty field and reason for a record without any."""
    external_id = row.external_id or ""
    if not row.problems:
        writer.writerow((row.index, external_id, row.outcome.value, "", ""))
    for problem in row.problems:
        writer.writerow((row.index, external_id, row.outcome.value, problem.field, problem.reason))
