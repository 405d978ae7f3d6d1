"""Listing filters: snake_case keyword arguments to the contract's query parameters."""

from __future__ import annotations

from datetime import date, datetime
from typing import TypedDict
from zoneinfo import ZoneInfo

# The contract's page size limit; a full listing is fetched in pages this large unless told otherwise.
MAX_PAGE_SIZE = 50

DateLike = str | date | datetime


class TransactionFilters(TypedDict, total=False):
    """Filters of `Client.transactions`, combined with AND; None means no filter.

    Dates are US Eastern time (see `eastern`); `limit` is the page size (default 50, the most allowed).
    """

    status: str | None
    type: str | None
    external_id: str | None
    product_external_id: str | None
    investor_external_id: str | None
    contact_external_id: str | None
    create_start_date: DateLike | None
    create_end_date: DateLike | None
    change_start_date: DateLike | None
    change_end_date: DateLike | None
    limit: int | None


_QUERY_NAMES = {
    "status": "status",
    "type": "type",
    "external_id": "externalId",
    "product_external_id": "productExternalId",
    "investor_external_id": "investorExternalId",
    "contact_external_id": "contactExternalId",
    "create_start_date": "createStartDate",
    "create_end_date": "createEndDate",
    "change_start_date": "changeStartDate",
    "change_end_date": "changeEndDate",
    "limit": "limit",
}


def eastern(moment: DateLike) -> str:
    """A date bound as the contract spells it.

    A `date` is `yyyy-MM-dd`; a naive `datetime` is taken as US Eastern wall time; an aware one is
    converted to it; a string is sent as it is.
    """
    if isinstance(moment, str):
        return moment
    if not isinstance(moment, datetime):
        return moment.isoformat()
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo("America/New_York"))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


class JobFilters(TypedDict, total=False):
    """Filters of `Client.jobs`, combined with AND; None means no filter.

    `status` is a job status (`Cancelled`, ...), `kind` one of create, transfer, modify; submission
    dates are US Eastern time (see `eastern`); `limit` is the page size (default 50).
    """

    status: str | None
    kind: str | None
    submitted_start: DateLike | None
    submitted_end: DateLike | None
    limit: int | None


_JOB_QUERY_NAMES = {
    "status": "status",
    "kind": "kind",
    "submitted_start": "submittedStart",
    "submitted_end": "submittedEnd",
    "limit": "limit",
}


def query_params(filters: TransactionFilters) -> dict[str, str]:
    """The query parameters of the first page; unknown filter names are a TypeError."""
    return _params(dict(filters), _QUERY_NAMES, "transaction")


def job_query_params(filters: JobFilters) -> dict[str, str]:
    """The query parameters of the job list's first page; unknown filter names are a TypeError."""
    return _params(dict(filters), _JOB_QUERY_NAMES, "job")


def _params(filters: dict[str, object], names: dict[str, str], what: str) -> dict[str, str]:
    unknown = sorted(set(filters) - set(names))
    if unknown:
        raise TypeError(f"unknown {what} filter(s): {', '.join(unknown)}")
    params: dict[str, str] = {"limit": str(MAX_PAGE_SIZE)}
    for name, value in filters.items():
        if value is None:
            continue
        if isinstance(value, date | datetime):
            params[names[name]] = eastern(value)
        else:
            params[names[name]] = str(value)
    return params
