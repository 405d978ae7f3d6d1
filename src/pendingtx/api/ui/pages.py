"""The dashboard's pages: each admits the session's caller, calls the services the /v1 routes call,
and renders a template."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pendingtx import errors
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.events import stream_response
from pendingtx.api.jobs import CSV_MEDIA_TYPE, csv_chunks
from pendingtx.api.ui import csrf
from pendingtx.api.ui.rendering import render
from pendingtx.api.ui.session import Session, Sessions
from pendingtx.domain.jobs import JobStatus
from pendingtx.domain.listing import FILTER_PARAMS
from pendingtx.domain.transactions import TransactionStatus, TransactionType
from pendingtx.services import event_log, job_listing, job_results, listing
from pendingtx.services.authentication import Caller
from pendingtx.services.cancellation import message_of
from pendingtx.services.job_status import APP_NAME

JOBS_PATH = "/ui"
JOB_PATH = "/ui/jobs/{key}"
TRANSACTIONS_PATH = "/ui/transactions"
# Problems listed per page of a job's page.
PROBLEMS_PAGE = 50
# Delivery attempts shown per webhook endpoint.
RECENT_DELIVERIES = 5


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in caller of a page and its sign-out form's CSRF token."""

    caller: Caller
    csrf: str

    def context(self, section: str, **values: Any) -> dict[str, Any]:
        """A template's context: the layout's members, then the page's."""
        return {
            "signed_in": True,
            "app_name": self.caller.app_name,
            "csrf": self.csrf,
            "section": section,
            **values,
        }


def picked(request: Request, names: Collection[str]) -> list[tuple[str, str]]:
    """The query's items named in `names` and not left empty (a form's blank fields filter nothing)."""
    return [(name, value) for name, value in request.query_params.multi_items() if name in names and value]


def here(link: str | None, path: str) -> str | None:
    """The dashboard's page `path` with the query of an API paging link (same filters and cursor)."""
    return None if link is None else f"{path}?{link.partition('?')[2]}"


def elapsed(submitted: datetime, completed: datetime | None) -> str:
    """How long a job took, `1 min 05 s`; "" while it runs."""
    if completed is None:
        return ""
    seconds = max(0, round((completed - submitted).total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


class Dashboard:
    """GET /ui, /ui/jobs/{key} (with its row and CSV), /ui/transactions, /ui/webhooks, /ui/events."""

    def __init__(self, services: ApiServices) -> None:
        self.services = services
        self.calls = services.calls
        self.sessions = Sessions(services)

    async def viewer(self, request: Request) -> Viewer:
        """The page's signed-in caller (SignedOut without one)."""
        session = Session.of(request)
        caller = await self.sessions.caller(request, session)
        key = await self.calls(self.services.keys.dashboard_key)
        return Viewer(caller, csrf.token_for(key, csrf.SESSION, session.token))

    async def jobs(self, request: Request) -> Response:
        """The organization's jobs, newest first, with a status filter and paging; live."""
        viewer = await self.viewer(request)
        params = picked(request, ("status", "after", "before"))
        services = self.services
        # Read before the jobs: the stream then starts early enough to miss nothing after them.
        sequence = await self.calls(event_log.last_sequence, services.uow, viewer.caller)
        found = await self.calls(
            job_listing.list_jobs, services.uow, viewer.caller, APP_NAME, params, keys=services.keys
        )
        return render(
            "jobs.html",
            viewer.context(
                "jobs",
                jobs=[view.job for view in found.rows],
                total=found.paging.total_count,
                statuses=[status.value for status in JobStatus],
                status=dict(params).get("status", ""),
                sequence=sequence,
                # New jobs are added live at the top of the first page of every job.
                insert=not params,
                newer=here(found.paging.previous, JOBS_PATH),
                older=here(found.paging.next, JOBS_PATH),
            ),
        )

    async def job(self, request: Request) -> Response:
        """A job's counts, timings and progress (live until it ends) and its problems, paged."""
        viewer = await self.viewer(request)
        key = request.path_params["key"]
        params = [("outcome", "rejected"), ("limit", str(PROBLEMS_PAGE)), *picked(request, ("after",))]
        services = self.services
        sequence = await self.calls(event_log.last_sequence, services.uow, viewer.caller)
        found = await self.calls(
            job_results.results_page, services.uow, viewer.caller, APP_NAME, key, params, keys=services.keys
        )
        job = found.job
        return render(
            "job.html",
            viewer.context(
                "jobs",
                job=job,
                message=message_of(job),
                elapsed=elapsed(job.submitted_at, job.completed_at),
                sequence=sequence,
                problems=[(row, problem) for row in found.rows for problem in row.problems],
                total=found.paging.total_count,
                first_page=not params[2:],
                older=here(found.paging.next, JOB_PATH.format(key=key)),
            ),
        )

    async def job_row(self, request: Request) -> Response:
        """One job's row of the jobs list: the list's script adds it when the job is submitted."""
        viewer = await self.viewer(request)
        job = await self.calls(
            job_results.find_job, self.services.uow, viewer.caller, APP_NAME, request.path_params["key"]
        )
        return render("job_row.html", {"job": job})

    async def results_csv(self, request: Request) -> Response:
        """The job's results as CSV, the same as the API's, as a download."""
        viewer = await self.viewer(request)
        key = request.path_params["key"]
        services = self.services
        results = await self.calls(
            job_results.CsvResults, services.uow, viewer.caller, APP_NAME, key, [], keys=services.keys
        )
        await self.calls(results.open)
        # The key is 1-128 characters of A-Z a-z 0-9 _ = + - (checked above): safe in the header.
        disposition = f'attachment; filename="job-{key}-results.csv"'
        return StreamingResponse(
            csv_chunks(self.calls, results),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": disposition},
        )

    async def transactions(self, request: Request) -> Response:
        """The transactions search: the list's filters, newest first, paged."""
        viewer = await self.viewer(request)
        params = picked(request, (*FILTER_PARAMS, "after", "before"))
        services = self.services
        context = viewer.context(
            "transactions",
            filters=dict(params),
            statuses=[s.value for s in TransactionStatus],
            types=[t.value for t in TransactionType],
            rows=[],
            total=0,
            problems=[],
            newer=None,
            older=None,
        )
        try:
            found = await self.calls(
                listing.list_transactions, services.uow, viewer.caller, params, keys=services.keys
            )
        except errors.ValidationFailed as exc:
            context["problems"] = [f"{detail.field}: {detail.reason}" for detail in exc.errors]
            return render("transactions.html", context, status=400)
        context.update(
            rows=[listing.transaction_json(row) for row in found.rows],
            total=found.paging.total_count,
            newer=here(found.paging.previous, TRANSACTIONS_PATH),
            older=here(found.paging.next, TRANSACTIONS_PATH),
        )
        return render("transactions.html", context)

    async def webhooks(self, request: Request) -> Response:
        """The organization's webhook endpoints with their latest deliveries."""
        viewer = await self.viewer(request)
        endpoints = await self.calls(self.services.webhooks.overview, viewer.caller, recent=RECENT_DELIVERIES)
        return render("webhooks.html", viewer.context("webhooks", endpoints=endpoints))

    async def not_found(self, request: Request) -> Response:
        """Any other path under /ui: a 404 page (with the dashboard's headers, unlike the API's 404)."""
        raise errors.NotFound("There is no such page.")

    async def events(self, request: Request) -> Response:
        """The organization's event stream for the pages' script (`after`, `key` as /v1/events takes them)."""
        caller = await self.sessions.caller(request)
        query = event_log.event_query(
            picked(request, ("after", "key")), last_event_id=request.headers.get("last-event-id")
        )
        return stream_response(self.services, caller, query)
