"""Sandbox mode's HTTP side (contract 7.6): the `Sandbox: true` header, `Prefer: code=` and
`Prefer: delay=` on /v1 requests, and the /sandbox routes.

The faults layer is put around the router, and the header is added by the request layer, only in
sandbox mode (api.app.create_app): a production server does no per-request work for any of this.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pendingtx import errors
from pendingtx.api.client_address import client_address
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.preferences import PREFER, preferences
from pendingtx.api.requests import read_body, require_media_type
from pendingtx.api.responses import JSON, json_response
from pendingtx.services.authentication import Caller, Credentials
from pendingtx.services.sandbox import MAX_BODY_BYTES, Sandbox

CLOCK_PATH = "/sandbox/clock"
RESET_PATH = "/sandbox/reset"
# On every answer of a sandbox, errors included (added by api.context.RequestContext).
SANDBOX_HEADER = (b"sandbox", b"true")
MAX_DELAY_MS = 10_000
_FAULTS: dict[str, type[errors.ApiError]] = {
    "429": errors.RateLimited,
    "500": errors.InternalFailure,
    "503": errors.ServiceUnavailable,
}


def _prefer_error(reason: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(errors=[errors.ErrorDetail("Prefer", "header", reason)])


class SandboxFaults:
    """Inside the request layer: a /v1 request's `Prefer: delay=N` waits N ms (without holding the
    event loop) and `Prefer: code=429|500|503` answers that contract error instead of the real one;
    what was applied is named in `Preference-Applied`. Other preferences pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Most requests carry no Prefer header: they pass with a glance at the header names.
        if (
            scope["type"] != "http"
            or not scope["path"].startswith("/v1/")
            or not any(name.lower() == PREFER for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        wanted = preferences(scope)
        applied = []
        delay = wanted.get("delay")
        if delay is not None:
            if not delay.isdigit() or int(delay) > MAX_DELAY_MS:
                raise _prefer_error(f"delay must be an integer number of milliseconds, 0 to {MAX_DELAY_MS}")
            await asyncio.sleep(int(delay) / 1000)
            applied.append(f"delay={int(delay)}")
        code = wanted.get("code")
        if code is not None:
            fault = _FAULTS.get(code)
            if fault is None:
                raise _prefer_error("code must be 429, 500 or 503")
            applied.append(f"code={code}")
            headers = {"Preference-Applied": ", ".join(applied)}
            if fault.transient:
                headers["Retry-After"] = "1"
            raise fault(f"{fault.__doc__} (sandbox: Prefer: code={code})", headers=headers)
        if not applied:
            await self.app(scope, receive, send)
            return
        header = (b"preference-applied", ", ".join(applied).encode("ascii"))

        async def applied_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, applied_send)


class SandboxRoutes:
    """GET/POST /sandbox/clock and POST /sandbox/reset, authenticated as /v1 routes are."""

    def __init__(self, services: ApiServices, sandbox: Sandbox) -> None:
        self.services = services
        self.sandbox = sandbox

    async def _caller(self, request: Request) -> Caller:
        headers = request.headers
        presented = Credentials(
            headers.get("authorization"),
            headers.get("appkey"),
            client_address(request.scope, self.services.trusted_proxies),
        )
        return await self.services.calls(
            self.services.authenticator.authenticate, presented, self.services.abuse.requests
        )

    async def clock(self, request: Request) -> Response:
        """/sandbox/clock: GET reads the server's clock, POST moves it forward."""
        await self._caller(request)
        if request.method == "POST":
            require_media_type(request, JSON)
            body = await read_body(request, limit=MAX_BODY_BYTES)
            return json_response(await self.services.calls(self.sandbox.advance, body))
        return json_response(self.sandbox.clock_body())

    async def reset(self, request: Request) -> Response:
        """POST /sandbox/reset: empty the caller's organization."""
        caller = await self._caller(request)
        await self.services.calls(self.sandbox.reset, caller)
        return Response(status_code=204)


def sandbox_routes(services: ApiServices) -> list[Route]:
    """The /sandbox routes; none outside sandbox mode (they answer 404 there like any unknown path)."""
    if services.sandbox is None:
        return []
    served = SandboxRoutes(services, services.sandbox)
    return [
        Route(CLOCK_PATH, served.clock, methods=["GET", "POST"]),
        Route(RESET_PATH, served.reset, methods=["POST"]),
    ]
