"""`GET /v1/jobs/{appName}/status/{key}`, the hot path: a plain ASGI endpoint over one database read.

Clients poll this route far more than any other, so it skips Starlette's Request and Response
objects and reads the two headers it needs straight from the ASGI scope.
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from pendingtx.api.client_address import client_address
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.long_poll import NO_WAIT, Wait, requested_wait
from pendingtx.api.responses import encode_json
from pendingtx.domain.times import to_eastern_iso
from pendingtx.services import job_status
from pendingtx.services.authentication import Credentials

STATUS_PATH = "/v1/jobs/insight/status/{key}"
STATUS_TEMPLATE = "/v1/jobs/{appName}/status/{key}"


def render(view: job_status.JobView) -> bytes:
    """The status answer, encoded."""
    return encode_json(job_body(view))


def job_body(view: job_status.JobView) -> dict[str, object]:
    """The status answer: the four documented members first, then the details."""
    job = view.job
    return {
        "status": job.status.value,
        "batchId": str(job.id),
        "message": view.message,
        "validationMessage": [p.message() for p in view.problems],
        "recordCount": job.record_count,
        "processedCount": job.processed_count,
        "failedCount": job.failed_count,
        "submittedAt": to_eastern_iso(job.submitted_at),
        "completedAt": to_eastern_iso(job.completed_at) if job.completed_at else None,
        "validationDetails": [
            {"index": p.index, "externalId": p.external_id, "field": p.field, "reason": p.reason}
            for p in view.problems
        ],
        # The full list is kept; the answer lists at most status_max_problems of it.
        "truncated": view.truncated,
    }


class StatusEndpoint:
    """Answers status GETs; errors are raised for the request layer to render."""

    def __init__(self, services: ApiServices) -> None:
        self._read = services.status
        self._trusted = services.trusted_proxies
        self._retry_after = str(services.settings.status_retry_after_seconds).encode("ascii")
        self._events = services.events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = app_key = prefer = None
        # ASGI servers hand header names over in lower case; the request layer has refused a
        # repeated one (api.limits.SINGLE_HEADERS), so each is seen at most once here.
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"appkey":
                app_key = value.decode("latin-1")
            elif name == b"prefer":
                prefer = value.decode("latin-1") if prefer is None else f"{prefer},{value.decode('latin-1')}"
        params = scope["path_params"]
        credentials = Credentials(authorization, app_key, client_address(scope, self._trusted))
        # Without a query string or Prefer header (plain polling) nothing more is looked at.
        wait = requested_wait(scope["query_string"], prefer) if scope["query_string"] or prefer else NO_WAIT
        request = job_status.StatusRequest(credentials, params["appName"], params["key"])
        answer = await self._read(request)
        if wait.problem is not None:
            raise wait.problem
        if wait.seconds and not answer.terminal:
            answer = await self._held(request, answer, wait)
        body = answer.body
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        if not answer.terminal:
            headers.append((b"retry-after", self._retry_after))
        if wait.preferred:
            headers.append((b"preference-applied", f"wait={wait.seconds}".encode("ascii")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _held(
        self, request: job_status.StatusRequest, answer: job_status.StatusAnswer, wait: Wait
    ) -> job_status.StatusAnswer:
        """The answer once the job is terminal or `wait` has passed (or the server stops)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait.seconds
        # Registered before reading again: a completion committed after this read wakes the watch.
        # The request was authenticated and charged when it arrived: only the job is read again.
        org_id = answer.org_id
        async with self._events.watch(org_id, request.key) as watch:
            answer = await self._read.reread(org_id, request.key)
            if answer.terminal:
                return answer
            await watch.wait(deadline - loop.time())
        return await self._read.reread(org_id, request.key)
