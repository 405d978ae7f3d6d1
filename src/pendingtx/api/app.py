"""The application factory: routes, the outer request layer, and the in-process worker's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from pendingtx.api.context import RequestContext
from pendingtx.api.openapi import DOCS_HTML, openapi_document
from pendingtx.api.responses import json_response
from pendingtx.api.status import StatusEndpoint
from pendingtx.api.token_endpoint import TokenEndpoint
from pendingtx.api.v1 import V1Routes
from pendingtx.bootstrap import Runtime
from pendingtx.worker.pool import WorkerPool


def routes(runtime: Runtime) -> list[Route]:
    """Every route the service answers."""
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

    return [
        Route("/v2/oauthtoken", TokenEndpoint(runtime).handle, methods=["POST"]),
        Route("/v1/jobs/{appName}/status/{key}", StatusEndpoint(runtime), methods=["GET"]),
        Route("/v1/transactions", v1.create_transactions, methods=["POST"]),
        Route("/v1/transactions", v1.list_transactions, methods=["GET"]),
        Route("/v1/transactions/{externalId}", v1.modify_transaction, methods=["PATCH"]),
        Route("/v1/transfers", v1.create_transfers, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        Route("/docs", docs, methods=["GET"], include_in_schema=False),
    ]


def create_app(runtime: Runtime, *, run_worker: bool = True) -> ASGIApp:
    """The ASGI application; with `run_worker` it also processes jobs in a background thread."""

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        pool = WorkerPool(runtime) if run_worker else None
        if pool is not None:
            pool.start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()

    router = Router(routes(runtime), lifespan=lifespan)
    return RequestContext(router, max_url_length=runtime.settings.max_url_length)
