"""The application factory: routes, the outer request layer, the in-process worker's lifespan, and the
server that `pendingtx serve` runs (with its graceful stop on SIGTERM).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from pendingtx import errors
from pendingtx.api.blocking import DatabaseCalls
from pendingtx.api.context import DATABASE_UNAVAILABLE, RequestContext
from pendingtx.api.openapi import DOCS_HTML, openapi_document
from pendingtx.api.responses import json_response
from pendingtx.api.status import STATUS_TEMPLATE, StatusEndpoint
from pendingtx.api.token_endpoint import OAUTH_PATH, TokenEndpoint
from pendingtx.api.v1 import V1Routes
from pendingtx.bootstrap import Runtime
from pendingtx.observability.logs import AccessLog
from pendingtx.observability.metrics import Metrics, QueueSnapshot, read_snapshot
from pendingtx.worker.pool import DEFAULT_SHUTDOWN_TIMEOUT, WorkerPool

log = logging.getLogger("pendingtx.api")


def routes(runtime: Runtime, metrics: Metrics | None = None) -> list[Route]:
    """Every route the service answers (`/metrics` with `metrics`)."""
    v1 = V1Routes(runtime)
    document = openapi_document()

    async def healthz(_: Request) -> Response:
        return json_response({"status": "ok"})

    db = runtime.database_calls()

    def ping() -> None:
        with runtime.uow.read() as conn:
            conn.execute(sa.select(1))

    async def readyz(_: Request) -> Response:
        # A database error becomes 503 service.unavailable in the request layer.
        await db(ping)
        return json_response({"status": "ready", "database": "ok"})

    async def openapi(_: Request) -> Response:
        return json_response(document)

    async def docs(_: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    served = [
        Route(OAUTH_PATH, TokenEndpoint(runtime).handle, methods=["POST"]),
        Route(STATUS_TEMPLATE, StatusEndpoint(runtime), methods=["GET"]),
        Route("/v1/transactions", v1.transactions, methods=["GET", "POST"]),
        Route("/v1/transactions/{externalId}", v1.transaction, methods=["GET", "PATCH"]),
        Route("/v1/transfers", v1.create_transfers, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        Route("/docs", docs, methods=["GET"], include_in_schema=False),
    ]
    if metrics is not None:
        served.append(
            Route("/metrics", _metrics_endpoint(runtime, metrics), methods=["GET"], include_in_schema=False)
        )
    return served


def _metrics_endpoint(runtime: Runtime, metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    # Counting jobs scans an index: always off the event loop (even on SQLite, where the API's
    # primary-key reads run on it), one scrape at a time, under the database deadline.
    db = DatabaseCalls(in_threads=True, timeout=runtime.settings.database_timeout_seconds, threads=1)

    async def scrape(request: Request) -> Response:
        # Job figures are read now, from the database; without it the scrape still answers, with
        # pendingtx_database_up 0, so that the request figures are not lost with it.
        snapshot: QueueSnapshot | None
        try:
            snapshot = await db(read_snapshot, runtime.uow, now=runtime.clock())
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
    runtime: Runtime,
    *,
    run_worker: bool = True,
    worker_pool: WorkerPool | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    access_log: AccessLog | None = None,
) -> ASGIApp:
    """The ASGI application; with `run_worker` it also processes jobs in background threads.

    The workers are `worker_pool` when given, else a pool of one thread made at startup. At shutdown
    they stop claiming, and within `shutdown_timeout` seconds finish or hand back their jobs. Each
    request is logged to `access_log` (by default, records of the `pendingtx.access` logger).
    """

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        pool = worker_pool if worker_pool is not None else WorkerPool(runtime) if run_worker else None
        if pool is not None:
            pool.start()
        try:
            yield
        finally:
            if pool is not None:
                # In a thread: the event loop stays free while the workers reach a chunk boundary.
                await anyio.to_thread.run_sync(pool.stop, shutdown_timeout)

    metrics = Metrics()
    # No redirect from /x/ to /x: a bare 307 would be an answer without the contract's error body.
    router = _StatusFirstRouter(routes(runtime, metrics), lifespan=lifespan, redirect_slashes=False)
    return RequestContext(
        router,
        max_url_length=runtime.settings.max_url_length,
        max_header_bytes=runtime.settings.max_header_bytes,
        metrics=metrics.requests,
        access_log=access_log,
        oauth_paths=(OAUTH_PATH,),
    )


def server_config(app: ASGIApp, *, host: str, port: int, log_level: str, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for serving `app`; `options` are more of uvicorn.Config's arguments.

    uvicorn's own proxy-header handling is off: by default it believes `X-Forwarded-For` from
    loopback and rewrites the client address before the service sees it. Only the proxies of
    PENDINGTX_TRUSTED_PROXIES may name the client (api/client_address.py).
    """
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, proxy_headers=False, **options)


class _Server(uvicorn.Server):
    """uvicorn's server, which also tells the workers to stop claiming the moment a stop signal arrives
    (rather than after the open connections have been served)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt the main thread while it holds a lock that stopping the
        # workers takes (a wake-up's): the event loop runs the stop request instead, right away.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # before the server has started: the workers have not either
            self._on_exit()
        else:
            loop.call_soon_threadsafe(self._on_exit)
        super().handle_exit(sig, frame)


def run_server(
    runtime: Runtime,
    *,
    host: str,
    port: int,
    log_level: str,
    run_worker: bool = True,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    access_log: AccessLog | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully and return (the process then exits 0).

    On the signal the workers stop claiming at once and hand back a job in progress at its next
    chunk boundary; the server stops accepting connections and finishes the requests in flight;
    each of the two is given `shutdown_timeout` seconds.
    """
    pool = WorkerPool(runtime) if run_worker else None
    app = create_app(
        runtime,
        run_worker=run_worker,
        worker_pool=pool,
        shutdown_timeout=shutdown_timeout,
        access_log=access_log,
    )
    config = server_config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # the request layer writes the access log
        log_config=None,  # uvicorn's records go to the process's JSON logging like any other
        timeout_graceful_shutdown=max(1, math.ceil(shutdown_timeout)),
    )
    # What exists by now (modules, the app, compiled statements) lives as long as the process: out
    # of the collector's sight, a full collection no longer walks it, which shortens the pauses
    # that make the slowest requests slow.
    gc.collect()
    gc.freeze()
    server = _Server(config, on_exit=pool.request_stop if pool is not None else lambda: None)
    # uvicorn raises the stop signal again once it has shut down, for the previous handler to act
    # on; with the default handler the process would die of it instead of exiting with status 0.
    # A signal before uvicorn installs its own handlers also starts a graceful stop.
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in stop_signals}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
