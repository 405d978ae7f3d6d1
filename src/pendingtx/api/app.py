"""The application factory: the routes, the outer request layer, and the lifespan of the work the
process runs beside the API (the embedded worker, handed over by the composition root)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from pendingtx import errors
from pendingtx.api.context import DATABASE_UNAVAILABLE, RequestContext
from pendingtx.api.dependencies import ApiServices, Background
from pendingtx.api.docs_page import docs_routes
from pendingtx.api.events import EventsEndpoint
from pendingtx.api.jobs import CANCEL_TEMPLATE, JOBS_TEMPLATE, RESULTS_TEMPLATE, JobRoutes
from pendingtx.api.oauth_metadata import METADATA_PATH, metadata_endpoint
from pendingtx.api.openapi import openapi_document
from pendingtx.api.responses import json_response
from pendingtx.api.sandbox import SANDBOX_HEADER, SandboxFaults, sandbox_routes
from pendingtx.api.status import STATUS_TEMPLATE, StatusEndpoint
from pendingtx.api.token_endpoint import OAUTH_PATH, TokenEndpoint
from pendingtx.api.token_revocation import REVOKE_PATH, RevocationEndpoint
from pendingtx.api.ui import ui_routes
from pendingtx.api.v1 import V1Routes
from pendingtx.api.webhooks import webhook_routes
from pendingtx.blocking import ThreadCalls
from pendingtx.domain.jobs import QueueSnapshot
from pendingtx.observability.logs import AccessLog
from pendingtx.observability.metrics import Metrics

log = logging.getLogger("pendingtx.api")

# Seconds a stopping process gives its background work to finish or hand back its jobs.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


def routes(services: ApiServices, metrics: Metrics | None = None, *, worker: bool = False) -> list[Route]:
    """Every route the service answers (`/metrics` with `metrics`); `worker`: this process runs one."""
    # Which process of several sharing the port answered, and whether it runs the embedded worker.
    health = {"status": "ok", "process": os.getpid(), "worker": worker}
    v1 = V1Routes(services)
    jobs = JobRoutes(services)
    document = openapi_document(services.settings)

    async def healthz(_: Request) -> Response:
        return json_response(health)

    async def readyz(_: Request) -> Response:
        # A database error becomes 503 service.unavailable in the request layer.
        await services.calls(services.ping)
        return json_response({"status": "ready", "database": "ok"})

    async def openapi(_: Request) -> Response:
        return json_response(document)

    tokens = TokenEndpoint(services)
    served = [
        Route(OAUTH_PATH, tokens.handle, methods=["POST"]),
        Route(REVOKE_PATH, RevocationEndpoint(tokens).handle, methods=["POST"]),
        Route(METADATA_PATH, metadata_endpoint, methods=["GET"]),
        Route(STATUS_TEMPLATE, StatusEndpoint(services), methods=["GET"]),
        Route("/v1/transactions", v1.transactions, methods=["GET", "POST"]),
        Route("/v1/transactions/{externalId}", v1.transaction, methods=["GET", "PATCH"]),
        Route("/v1/transfers", v1.create_transfers, methods=["POST"]),
        *webhook_routes(services),
        Route(JOBS_TEMPLATE, jobs.list_jobs, methods=["GET"]),
        Route(CANCEL_TEMPLATE, jobs.cancel, methods=["POST"]),
        Route(RESULTS_TEMPLATE, jobs.results, methods=["GET"]),
        Route("/v1/events", EventsEndpoint(services, v1.caller).handle, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        *docs_routes(),
        *ui_routes(services),
        *sandbox_routes(services),
    ]
    if metrics is not None:
        served.append(
            Route("/metrics", _metrics_endpoint(services, metrics), methods=["GET"], include_in_schema=False)
        )
    return served


def _metrics_endpoint(services: ApiServices, metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    # Counting jobs scans an index: always off the event loop (even on SQLite, where the API's
    # primary-key reads run on it), one scrape at a time, under the database deadline.
    calls = ThreadCalls(timeout=services.settings.database_timeout_seconds, threads=1)

    async def scrape(request: Request) -> Response:
        # Job figures are read now, from the database; without it the scrape still answers, with
        # pendingtx_database_up 0, so that the request figures are not lost with it.
        snapshot: QueueSnapshot | None
        try:
            snapshot = await calls(services.queue_snapshot)
        except (errors.ServiceUnavailable, *DATABASE_UNAVAILABLE) as exc:
            log.warning("metrics: the database could not be read: %s", type(exc).__name__)
            snapshot = None
        body, content_type = metrics.exposition(snapshot, request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return scrape


class _StatusFirstRouter(Router):
    """Starlette's router, except that a status GET goes straight to its route.

    Clients poll the status route far more than any other; the match is the route's own (each
    parameter one or more characters other than `/`), so the answer is the router's, with the same
    `route` and `path_params` in the scope.
    """

    def __init__(self, routes: list[Route], **options: Any) -> None:
        super().__init__(routes, **options)
        self.status_route = next(r for r in routes if r.path == STATUS_TEMPLATE)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            # "", "v1", "jobs", appName, "status", key
            parts = scope["path"].split("/", 6)
            if (
                len(parts) == 6
                and parts[1] == "v1"
                and parts[2] == "jobs"
                and parts[4] == "status"
                and parts[3]
                and parts[5]
            ):
                route = self.status_route
                scope["router"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {"appName": parts[3], "key": parts[5]}
                await route.app(scope, receive, send)
                return
        await super().app(scope, receive, send)


def create_app(
    services: ApiServices,
    *,
    background: Background | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    access_log: AccessLog | None = None,
) -> ASGIApp:
    """The ASGI application; `background` work (the embedded worker) starts and stops with it.

    At shutdown the background work stops taking jobs and, within `shutdown_timeout` seconds,
    finishes or hands back what it holds. Each request is logged to `access_log` (by default,
    records of the `pendingtx.access` logger).
    """

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        services.events.start()
        if background is not None:
            background.start()
        try:
            yield
        finally:
            # Held status reads and streams have been answered at the stop signal (bootstrap.serve);
            # here, for servers that stop without one.
            services.events.close()
            await anyio.to_thread.run_sync(services.events.stop_feed)
            if background is not None:
                # In a thread: the event loop stays free while the workers reach a chunk boundary.
                await anyio.to_thread.run_sync(background.stop, shutdown_timeout)

    metrics = Metrics()
    # No redirect from /x/ to /x: a bare 307 would be an answer without the contract's error body.
    served = routes(services, metrics, worker=background is not None)
    router = _StatusFirstRouter(served, lifespan=lifespan, redirect_slashes=False)
    sandbox = services.settings.sandbox
    return RequestContext(
        # Only a sandbox has these layers: a production server does no per-request work for them.
        SandboxFaults(router) if sandbox else router,
        max_url_length=services.settings.max_url_length,
        max_header_bytes=services.settings.max_header_bytes,
        metrics=metrics.requests,
        access_log=access_log,
        oauth_paths=(OAUTH_PATH, REVOKE_PATH),
        answer_headers=[SANDBOX_HEADER] if sandbox else [],
    )
