"""Reading jobs as a resource: the organization's jobs a page at a time, newest first, and a job's
problems a range of records at a time (its results)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.job_listing import COUNT_LIMIT, JobListQuery
from pendingtx.domain.jobs import RecordProblem
from pendingtx.storage.driver import Statement, run
from pendingtx.storage.jobs import STATUS_COLUMNS, JobRecord, job_record, problems_of_rows
from pendingtx.storage.tables import job_problems, jobs

_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of jobs, newest first, and whether jobs exist beyond either end of it."""

    rows: list[JobRecord]
    total_count: int
    more_after: bool
    more_before: bool


_FILTERS: dict[str, Any] = {
    "status": lambda: jobs.c.status == sa.bindparam("status"),
    "kind": lambda: jobs.c.kind == sa.bindparam("kind"),
    "submitted_start": lambda: (
        jobs.c.submitted_at >= sa.bindparam("submitted_start", type_=jobs.c.submitted_at.type)
    ),
    "submitted_end": lambda: (
        jobs.c.submitted_at < sa.bindparam("submitted_end", type_=jobs.c.submitted_at.type)
    ),
}


@dataclass(frozen=True, slots=True)
class _Listing:
    total: Statement
    newest: Statement
    older: Statement
    newer: Statement
    any_older: Statement
    any_newer: Statement


@lru_cache(maxsize=64)
def _listing(filters: frozenset[str]) -> _Listing:
    where = [jobs.c.org_id == sa.bindparam("org_id"), *(_FILTERS[name]() for name in sorted(filters))]
    page = sa.select(*STATUS_COLUMNS).where(*where).limit(sa.bindparam("limit"))
    cursor: sa.BindParameter[int] = sa.bindparam("cursor", type_=sa.BigInteger)
    return _Listing(
        # Counted up to COUNT_LIMIT: an organization's jobs grow without bound (until retention), and
        # counting a million of them would cost each page far more than reading it.
        total=Statement(
            sa.select(sa.func.count().label("rows")).select_from(
                sa.select(jobs.c.id).where(*where).limit(COUNT_LIMIT).subquery()
            )
        ),
        # The first page has no cursor to bound: a bound past every id misleads PostgreSQL's planner.
        newest=Statement(page.order_by(jobs.c.id.desc())),
        older=Statement(page.where(jobs.c.id < cursor).order_by(jobs.c.id.desc())),
        newer=Statement(page.where(jobs.c.id > cursor).order_by(jobs.c.id)),
        # The next id either way, not EXISTS: PostgreSQL's generic plan for EXISTS may scan the whole
        # table when there is none (the first page has nothing newer); this one walks (org_id, id).
        any_older=Statement(
            sa.select(jobs.c.id).where(*where, jobs.c.id < cursor).order_by(jobs.c.id.desc()).limit(1)
        ),
        any_newer=Statement(
            sa.select(jobs.c.id).where(*where, jobs.c.id > cursor).order_by(jobs.c.id).limit(1)
        ),
    )


def _values(org_id: int, query: JobListQuery) -> dict[str, Any]:
    end = query.submitted_end
    values: dict[str, Any] = {
        "org_id": org_id,
        "status": query.status and query.status.value,
        "kind": query.kind and query.kind.value,
        "submitted_start": query.submitted_start,
        # Inclusive to the client's millisecond; stored times carry microseconds.
        "submitted_end": None if end is None or end.year == 9999 else end + _MILLISECOND,
    }
    return {name: value for name, value in values.items() if value is not None}


def list_page(conn: sa.Connection, org_id: int, query: JobListQuery) -> JobPage:
    """A page of the organization's jobs, newest first, after (older than) or before (newer than) a
    cursor's job."""
    values = _values(org_id, query)
    listing = _listing(frozenset(values) - {"org_id"})
    # A later page carries the count its listing's first page took: at a million rows, counting
    # them costs far more than reading a page.
    total = query.total if query.total is not None else int(run(conn, listing.total, values).scalar())
    window = {**values, "limit": query.limit + 1}
    if query.before is not None:
        found = run(conn, listing.newer, {**window, "cursor": query.before}).all()
        rows = [_job(r) for r in reversed(found[: query.limit])]
        more_before = len(found) > query.limit
        more_after = bool(rows) and bool(
            run(conn, listing.any_older, {**values, "cursor": rows[-1].id}).scalar()
        )
    else:
        if query.after is None:
            found = run(conn, listing.newest, window).all()
        else:
            found = run(conn, listing.older, {**window, "cursor": query.after}).all()
        rows = [_job(r) for r in found[: query.limit]]
        more_after = len(found) > query.limit
        more_before = bool(rows) and bool(
            run(conn, listing.any_newer, {**values, "cursor": rows[0].id}).scalar()
        )
    return JobPage(rows, total, more_after, more_before)


def _job(row: Any) -> JobRecord:
    found = job_record(row)
    assert found is not None
    return found


# --- results --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultJob:
    """A job whose results are read: as the status endpoint shows it, and its target (modifications)."""

    job: JobRecord
    target: str | None


_FOR_RESULTS = Statement(
    sa.select(*STATUS_COLUMNS, jobs.c.target).where(
        jobs.c.key == sa.bindparam("key"), jobs.c.org_id == sa.bindparam("org_id")
    )
)
# A batch is up to 16 MiB: read in binary, not as hex text.
_PAYLOAD = Statement(sa.select(jobs.c.payload).where(jobs.c.id == sa.bindparam("job_id")), binary=True)


def for_results(conn: sa.Connection, org_id: int, key: str) -> ResultJob | None:
    """The organization's job with this key, or None."""
    row = run(conn, _FOR_RESULTS, {"key": key, "org_id": org_id}).first()
    if row is None:
        return None
    return ResultJob(_job(row), row.target)


def payload_of(conn: sa.Connection, job_id: int) -> bytes:
    """The job's stored batch (empty when the job is gone)."""
    row = run(conn, _PAYLOAD, {"job_id": job_id}).first()
    return b"" if row is None else bytes(row.payload)


_PROBLEMS_BETWEEN = Statement(
    sa.select(
        job_problems.c.record_index, job_problems.c.external_id, job_problems.c.field, job_problems.c.reason
    )
    .where(
        job_problems.c.job_id == sa.bindparam("job_id"),
        job_problems.c.record_index >= sa.bindparam("low"),
        job_problems.c.record_index < sa.bindparam("high"),
    )
    .order_by(job_problems.c.record_index, job_problems.c.id)
)
_REJECTED_FROM = Statement(
    sa.select(job_problems.c.record_index)
    .where(
        job_problems.c.job_id == sa.bindparam("job_id"), job_problems.c.record_index >= sa.bindparam("low")
    )
    .group_by(job_problems.c.record_index)
    .order_by(job_problems.c.record_index)
    .limit(sa.bindparam("limit"))
)
_REJECTED_BETWEEN = Statement(
    sa.select(job_problems.c.record_index)
    .where(
        job_problems.c.job_id == sa.bindparam("job_id"),
        job_problems.c.record_index >= sa.bindparam("low"),
        job_problems.c.record_index < sa.bindparam("high"),
    )
    .group_by(job_problems.c.record_index)
)


def problems_between(conn: sa.Connection, job_id: int, low: int, high: int) -> list[RecordProblem]:
    """The job's problems of records `low` (inclusive) to `high` (exclusive), in record order."""
    return problems_of_rows(run(conn, _PROBLEMS_BETWEEN, {"job_id": job_id, "low": low, "high": high}).all())


def rejected_from(conn: sa.Connection, job_id: int, low: int, limit: int) -> list[int]:
    """The indexes of up to `limit` rejected records from `low` on, in order."""
    rows = run(conn, _REJECTED_FROM, {"job_id": job_id, "low": low, "limit": limit}).all()
    return [int(row.record_index) for row in rows]


def rejected_between(conn: sa.Connection, job_id: int, low: int, high: int) -> set[int]:
    """The indexes of the rejected records from `low` (inclusive) to `high` (exclusive)."""
    rows = run(conn, _REJECTED_BETWEEN, {"job_id": job_id, "low": low, "high": high}).all()
    return {int(row.record_index) for row in rows}
