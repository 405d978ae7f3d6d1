"""A synchronous httpx transport that serves each request with an ASGI app, in-process.

httpx's own `ASGITransport` is async-only (what `AsyncClient` uses) and `Client` is sync, so this
runs the async transport on an anyio portal thread. It is httpx's `BaseTransport` (not httpx2's, which
Starlette's TestClient uses), so the SDK can take it as its `transport`.
"""

from __future__ import annotations

from contextlib import ExitStack

import anyio.from_thread
import httpx
from starlette.types import ASGIApp


def asgi_transport(app: ASGIApp) -> httpx.ASGITransport:
    """httpx's async transport to the app, as from a client on 127.0.0.1."""
    return httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))


class ASGIBridge(httpx.BaseTransport):
    """Sends requests to an ASGI app; lifespan events are not run (create the app with run_worker=False)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = asgi_transport(app)
        self._stack = ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._portal.call(self._handle, request)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        answer = await self._app.handle_async_request(request)
        content = await answer.aread()
        await answer.aclose()
        return httpx.Response(answer.status_code, headers=answer.headers, content=content, request=request)

    def close(self) -> None:
        self._stack.close()


class Recording(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Passes requests on to another transport and keeps every request it saw; for both clients.

    `Client` goes through `inner`, `AsyncClient` through `inner_async`. Closing it leaves them
    open, so that several clients in turn can use it.
    """

    def __init__(self, inner: httpx.BaseTransport, inner_async: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.inner_async = inner_async
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner_async.handle_async_request(request)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]
