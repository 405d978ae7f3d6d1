"""Jobs as a resource (contract 7.4): list them, cancel one, read one's results as JSON or CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pendingtx.api.responses import json_response
from pendingtx.api.status import job_body
from pendingtx.api.v1 import V1Routes
from pendingtx.blocking import BlockingCalls
from pendingtx.domain import listing as paging
from pendingtx.services import cancellation, job_listing, job_results
from pendingtx.services.job_status import JobView

JOBS_TEMPLATE = "/v1/jobs/{appName}"
CANCEL_TEMPLATE = "/v1/jobs/{appName}/cancel/{key}"
RESULTS_TEMPLATE = "/v1/jobs/{appName}/results/{key}"
CSV = "text/csv"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# The status body's members a listed job leaves out: a list says how jobs went, results say why.
_DETAILS = ("validationMessage", "validationDetails", "truncated")


def listed_job(view: JobView) -> dict[str, object]:
    """A job as the list shows it: the status body without its problems, with its key and kind."""
    body = {name: value for name, value in job_body(view).items() if name not in _DETAILS}
    return {**body, "jobStatusQueryKey": view.job.key, "kind": view.job.kind.value}


def wants_csv(request: Request) -> bool:
    """Whether the client asked for CSV (`Accept: text/csv`) rather than JSON."""
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip().lower() == CSV for part in accept.split(","))


class JobRoutes(V1Routes):
    """GET /v1/jobs/{appName}, POST .../cancel/{key}, GET .../results/{key}."""

    async def list_jobs(self, request: Request) -> Response:
        """GET /v1/jobs/{appName}."""
        caller = await self._caller(request)
        found = await self.calls(
            job_listing.list_jobs,
            self.services.uow,
            caller,
            request.path_params["appName"],
            request.query_params.multi_items(),
            keys=self.services.keys,
        )
        return json_response(
            {
                "data": {"results": [listed_job(job) for job in found.rows]},
                "paging": paging.to_body(found.paging),
            }
        )

    async def cancel(self, request: Request) -> Response:
        """POST /v1/jobs/{appName}/cancel/{key}: 202 with the status body."""
        caller = await self._caller(request)
        view = await self.calls(
            cancellation.cancel_job,
            self.services.uow,
            caller,
            request.path_params["appName"],
            request.path_params["key"],
            clock=self.services.clock,
            max_problems=self.services.settings.status_max_problems,
        )
        return json_response(job_body(view), status=202)

    async def results(self, request: Request) -> Response:
        """GET /v1/jobs/{appName}/results/{key}: a page as JSON, or everything as streamed CSV."""
        caller = await self._caller(request)
        app_name, key = request.path_params["appName"], request.path_params["key"]
        params = request.query_params.multi_items()
        if wants_csv(request):
            # Checked and found before the answer starts: errors keep the contract's JSON body.
            results = await self.calls(
                job_results.CsvResults,
                self.services.uow,
                caller,
                app_name,
                key,
                params,
                keys=self.services.keys,
            )
            await self.calls(results.open)
            return StreamingResponse(csv_chunks(self.calls, results), media_type=CSV_MEDIA_TYPE)
        found = await self.calls(
            job_results.results_page,
            self.services.uow,
            caller,
            app_name,
            key,
            params,
            keys=self.services.keys,
        )
        return json_response(
            {
                "data": {"results": [row.to_json() for row in found.rows]},
                "paging": paging.to_body(found.paging),
            }
        )


async def csv_chunks(calls: BlockingCalls, results: job_results.CsvResults) -> AsyncIterator[bytes]:
    """The opened results' CSV, a page of records at a time (each read in a blocking call)."""
    while chunk := await calls(results.next_chunk):
        yield chunk.encode("utf-8")
