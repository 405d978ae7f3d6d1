"""The /v1 routes: authenticate, hand the request to a service, shape the answer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from pendingtx import errors
from pendingtx.api.client_address import client_address
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.requests import given_once, media_type, read_body, require_media_type
from pendingtx.api.responses import JSON, json_response
from pendingtx.api.status import STATUS_PATH
from pendingtx.domain import listing as paging
from pendingtx.domain.jobs import JobKind
from pendingtx.services import listing, lookup, modifications, submissions
from pendingtx.services.authentication import Caller, Credentials
from pendingtx.services.enqueue import AcceptedJob, Idempotency, NewJob


class V1Routes:
    """Endpoints of the Pending Transactions product."""

    def __init__(self, services: ApiServices) -> None:
        self.services = services
        self.calls = services.calls

    async def caller(self, request: Request) -> Caller:
        """The authenticated caller of a /v1 request (charged to its application's request budget)."""
        return await self._caller(request)

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

    async def transactions(self, request: Request) -> Response:
        """/v1/transactions: GET lists, POST creates (one route, so a 405 names both methods)."""
        if request.method == "POST":
            return await self.create_transactions(request)
        return await self.list_transactions(request)

    async def create_transactions(self, request: Request) -> Response:
        """POST /v1/transactions."""
        return await self._submit(request, JobKind.CREATE)

    async def create_transfers(self, request: Request) -> Response:
        """POST /v1/transfers."""
        return await self._submit(request, JobKind.TRANSFER)

    async def _submit(self, request: Request, kind: JobKind) -> Response:
        caller = await self._caller(request)
        query = given_once(request.query_params.multi_items(), location="query", names=("state",))
        state = query.get("state")
        if state is not None and state != "pending":
            raise errors.ValidationFailed(errors=[errors.ErrorDetail("state", "query", "must be 'pending'")])
        require_media_type(request, JSON)
        body = await read_body(request, limit=self.services.settings.max_body_bytes)
        job = submissions.batch_job(body, kind=kind, max_records=self.services.settings.max_batch_records)
        return await self._accept(caller, job, _idempotency(request, body))

    async def transaction(self, request: Request) -> Response:
        """/v1/transactions/{externalId}: GET reads, PATCH modifies (one route, so a 405 names both)."""
        if request.method == "PATCH":
            return await self.modify_transaction(request)
        return await self.get_transaction(request)

    async def get_transaction(self, request: Request) -> Response:
        """GET /v1/transactions/{externalId}."""
        caller = await self._caller(request)
        found = await self.calls(
            lookup.get_transaction, self.services.uow, caller, request.path_params["externalId"]
        )
        return json_response(found)

    async def modify_transaction(self, request: Request) -> Response:
        """PATCH /v1/transactions/{externalId}."""
        caller = await self._caller(request)
        body = await read_body(request, limit=self.services.settings.max_body_bytes)
        idempotency = _idempotency(request, body)
        job = await self.calls(
            modifications.modification_job,
            self.services.uow,
            caller,
            request.path_params["externalId"],
            body=body,
            media_type=media_type(request),
            limits=self.services.settings.patch_limits,
        )
        return await self._accept(caller, job, idempotency)

    async def _accept(self, caller: Caller, job: NewJob, idempotency: Idempotency | None) -> Response:
        """Store the job durably, then answer 202."""
        return _accepted(await self.services.acceptor.accept(caller, job, idempotency))

    async def list_transactions(self, request: Request) -> Response:
        """GET /v1/transactions."""
        caller = await self._caller(request)
        found = await self.calls(
            listing.list_transactions,
            self.services.uow,
            caller,
            request.query_params.multi_items(),
            keys=self.services.keys,
        )
        return json_response(
            {
                "data": {"results": [listing.transaction_json(row) for row in found.rows]},
                "paging": paging.to_body(found.paging),
            }
        )


def _idempotency(request: Request, body: bytes) -> Idempotency | None:
    # The digest covers everything that makes two requests "the same request".
    described = b"\n".join(
        part.encode() for part in (request.method, request.url.path, request.url.query, media_type(request))
    )
    return Idempotency.of(request.headers.get("idempotency-key"), request=described + b"\n" + body)


def _accepted(accepted: AcceptedJob) -> Response:
    return json_response(
        {"jobStatusQueryKey": accepted.key, "batchId": accepted.batch_id},
        status=202,
        headers={"Location": STATUS_PATH.format(key=accepted.key)},
    )
