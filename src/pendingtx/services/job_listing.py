"""Listing the caller's jobs (contract 7.4): filters, newest first, cursor paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pendingtx.domain import listing
from pendingtx.domain.cursors import ListKind
from pendingtx.domain.job_listing import JOB_FILTERS, parse_job_list_query
from pendingtx.services.authentication import Caller
from pendingtx.services.cancellation import message_of
from pendingtx.services.job_status import JobView, check_app_name
from pendingtx.services.listing import checked, paging_of
from pendingtx.storage import job_pages
from pendingtx.storage.server_keys import ServerKeys
from pendingtx.storage.unit_of_work import UnitOfWork

JOBS_PATH = "/v1/jobs/{appName}"


@dataclass(frozen=True, slots=True)
class JobListing:
    """One page of jobs and how to reach its neighbours."""

    rows: list[JobView]
    paging: listing.Paging


def list_jobs(
    uow: UnitOfWork, caller: Caller, app_name: str, params: Sequence[tuple[str, str]], *, keys: ServerKeys
) -> JobListing:
    """The page of the caller's jobs the query parameters ask for."""
    check_app_name(app_name)
    cursors = keys.cursor_key().for_listing(ListKind.JOBS, caller.org_id)
    query = checked(parse_job_list_query(params, cursors))
    with uow.read() as conn:
        page = job_pages.list_page(conn, caller.org_id, query)
    paging = paging_of(
        query,
        page,
        cursors=cursors,
        params=params,
        path=JOBS_PATH.format(appName=app_name),
        filters=JOB_FILTERS,
    )
    return JobListing([JobView(job, message_of(job), []) for job in page.rows], paging)
