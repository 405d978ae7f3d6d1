"""Jobs as a resource (contract 7.4): the job list's and the results' query parameters, and the
outcome of each submitted record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pendingtx.domain.cursors import ListingCursors
from pendingtx.domain.jobs import JobKind, JobStatus
from pendingtx.domain.listing import DEFAULT_LIMIT, MAX_LIMIT, QueryReader, single_values
from pendingtx.domain.transactions import Problem

JOB_FILTERS = ("status", "kind", "submittedStart", "submittedEnd")
_JOB_RANK = {name: rank for rank, name in enumerate((*JOB_FILTERS, "limit", "after", "before"))}
RESULT_FILTERS = ("outcome",)
_RESULT_RANK = {name: rank for rank, name in enumerate((*RESULT_FILTERS, "limit", "after"))}
# The job list's `totalCount` counts at most this many jobs: beyond, it says this many.
COUNT_LIMIT = 10_000
# A page of results holds up to this many records (contract 7.4).
MAX_RESULTS_LIMIT = 1000
DEFAULT_RESULTS_LIMIT = 100


class Outcome(StrEnum):
    """What became of one submitted record."""

    CREATED = "created"
    REJECTED = "rejected"
    # Not reached: the job failed or was cancelled before it (or has not reached it yet).
    UNPROCESSED = "unprocessed"


@dataclass(frozen=True, slots=True)
class JobListQuery:
    """A parsed job listing request: newest first, one page after or before a cursor (job ids), and
    the count that cursor carries."""

    status: JobStatus | None = None
    kind: JobKind | None = None
    submitted_start: datetime | None = None
    submitted_end: datetime | None = None
    limit: int = DEFAULT_LIMIT
    after: int | None = None
    before: int | None = None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class ResultsQuery:
    """A parsed results request: records after a cursor (a record's index + 1), of one outcome or all."""

    outcome: Outcome | None = None
    limit: int = DEFAULT_RESULTS_LIMIT
    after: int | None = None


def _sorted(problems: list[Problem], rank: dict[str, int]) -> list[Problem]:
    return sorted(problems, key=lambda p: rank.get(p.field, len(rank)))


def parse_job_list_query(
    params: Sequence[tuple[str, str]], cursors: ListingCursors
) -> JobListQuery | list[Problem]:
    """The job listing query from the raw query items, or every problem with them."""
    values, problems = single_values(params, _JOB_RANK)
    read = QueryReader(values, cursors)
    query = read.paged(
        JobListQuery(
            status=read.member("status", JobStatus),
            kind=read.member("kind", JobKind),
            submitted_start=read.moment("submittedStart", end=False),
            submitted_end=read.moment("submittedEnd", end=True),
            limit=read.limit(DEFAULT_LIMIT, MAX_LIMIT),
        )
    )
    start, end = query.submitted_start, query.submitted_end
    if start is not None and end is not None and start > end:
        read.fail("submittedEnd", "must not be before submittedStart")
    if "after" in values and "before" in values:
        read.fail("before", "cannot be combined with after")
    problems += read.problems
    return _sorted(problems, _JOB_RANK) if problems else query


def parse_results_query(
    params: Sequence[tuple[str, str]], cursors: ListingCursors
) -> ResultsQuery | list[Problem]:
    """The results query from the raw query items, or every problem with them."""
    values, problems = single_values(params, _RESULT_RANK)
    read = QueryReader(values, cursors)
    query = ResultsQuery(
        outcome=read.member("outcome", Outcome),
        limit=read.limit(DEFAULT_RESULTS_LIMIT, MAX_RESULTS_LIMIT),
        after=read.cursor("after"),
    )
    problems += read.problems
    return _sorted(problems, _RESULT_RANK) if problems else query


def outcome_of(index: int, *, rejected: bool, processed_count: int) -> Outcome:
    """A record's outcome: rejected when it has problems, created when processed without, else not
    processed (a record is processed once the job's committed count passes its index)."""
    if rejected:
        return Outcome.REJECTED
    return Outcome.CREATED if index < processed_count else Outcome.UNPROCESSED
