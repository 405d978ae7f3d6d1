"""The /v1/webhooks routes (contract 7.3): authenticate, hand the request to the webhook service."""

from __future__ import annotations

import functools

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pendingtx.api.client_address import client_address
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.requests import given_once, read_body, require_media_type
from pendingtx.api.responses import JSON, json_response
from pendingtx.services.authentication import Caller, Credentials
from pendingtx.services.webhooks import MAX_BODY_BYTES

COLLECTION = "/v1/webhooks"
ONE = "/v1/webhooks/{id}"
DELIVERIES = "/v1/webhooks/{id}/deliveries"
REPLAY = "/v1/webhooks/{id}/replay"


class WebhookRoutes:
    """Registering endpoints, reading their delivery log, replaying events."""

    def __init__(self, services: ApiServices) -> None:
        self.services = services
        self.calls = services.calls
        self.service = services.webhooks

    async def _caller(self, request: Request) -> Caller:
        headers = request.headers
        presented = Credentials(
            headers.get("authorization"),
            headers.get("appkey"),
            client_address(request.scope, self.services.trusted_proxies),
        )
        return await self.calls(
            self.services.authenticator.authenticate, presented, self.services.abuse.requests
        )

    async def _body(self, request: Request) -> bytes:
        require_media_type(request, JSON)
        return await read_body(request, limit=MAX_BODY_BYTES)

    async def collection(self, request: Request) -> Response:
        """/v1/webhooks: POST registers, GET lists."""
        caller = await self._caller(request)
        if request.method == "POST":
            body = await self._body(request)
            # Resolving the URL's host blocks: in a thread, even where database calls run inline.
            created = await anyio.to_thread.run_sync(functools.partial(self.service.create, caller, body))
            return json_response(created, status=201, headers={"Location": f"{COLLECTION}/{created['id']}"})
        found = await self.calls(self.service.list, caller)
        return json_response({"data": {"results": found}})

    async def one(self, request: Request) -> Response:
        """/v1/webhooks/{id}: GET reads, PATCH changes, DELETE removes."""
        caller = await self._caller(request)
        public_id = request.path_params["id"]
        if request.method == "PATCH":
            body = await self._body(request)
            changed = await anyio.to_thread.run_sync(
                functools.partial(self.service.change, caller, public_id, body)
            )
            return json_response(changed)
        if request.method == "DELETE":
            await self.calls(self.service.delete, caller, public_id)
            return Response(status_code=204)
        return json_response(await self.calls(self.service.get, caller, public_id))

    async def deliveries(self, request: Request) -> Response:
        """GET /v1/webhooks/{id}/deliveries."""
        caller = await self._caller(request)
        query = given_once(request.query_params.multi_items(), location="query")
        found = await self.calls(
            functools.partial(
                self.service.deliveries, caller, request.path_params["id"], query, path=request.url.path
            )
        )
        return json_response(found)

    async def replay(self, request: Request) -> Response:
        """POST /v1/webhooks/{id}/replay."""
        caller = await self._caller(request)
        body = await self._body(request)
        queued = await self.calls(self.service.replay, caller, request.path_params["id"], body)
        return json_response(queued, status=202)


def webhook_routes(services: ApiServices) -> list[Route]:
    """The routes of /v1/webhooks."""
    routes = WebhookRoutes(services)
    return [
        Route(COLLECTION, routes.collection, methods=["GET", "POST"]),
        Route(ONE, routes.one, methods=["GET", "PATCH", "DELETE"]),
        Route(DELIVERIES, routes.deliveries, methods=["GET"]),
        Route(REPLAY, routes.replay, methods=["POST"]),
    ]
