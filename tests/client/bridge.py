"""A synchronous httpx transport that serves each request with an ASGI app, in-process.

httpx's own `ASGITransport` is async-only and the SDK's `Client` is sync, so this runs the async
transport on an anyio portal thread. It is httpx's `BaseTransport` (not httpx2's, which
Starlette's TestClient uses), so the SDK can take it as its `transport`.
"""

from __future__ import annotations

from contextlib import ExitStack

import anyio.from_thread
import httpx
from starlette.types import ASGIApp


class ASGIBridge(httpx.BaseTransport):
    """Sends requests to an ASGI app; lifespan events are not run (create the app with run_worker=False)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
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


class Recording(httpx.BaseTransport):
    """Passes requests on to another transport and keeps every request it saw.

    Closing it leaves the other transport open, so that several clients in turn can use it.
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        pass

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]
