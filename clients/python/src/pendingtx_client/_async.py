"""`AsyncClient`: the same calls as `Client`, awaited, on httpx's async client."""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import closing
from types import TracebackType
from typing import IO, Any, TypeVar, Unpack

import httpx

from pendingtx_client import webhooks as _webhooks
from pendingtx_client._base import DEFAULT_POLL, DEFAULT_RETRY, DEFAULT_TIMEOUT, BaseClient
from pendingtx_client._core import Flow, Outcome, Pause, Step, Timeout
from pendingtx_client._events import EVENTS_PATH, READ_TIMEOUT, Event, EventStream
from pendingtx_client._listing import JobFilters, TransactionFilters
from pendingtx_client._models import JobRef, JobStatus, JobSummary, RecordResult, Transaction
from pendingtx_client._operations import RESULTS_PAGE, CsvWriter, Paged, Pages, Record
from pendingtx_client._retry import RetryPolicy

T = TypeVar("T")


class AsyncClient(BaseClient):
    """`Client` for asyncio: the same constructor, methods and errors, each method awaited.

    `sleep` is awaited (default `asyncio.sleep`); `transactions` is an async iterator. Share one
    client between the tasks of an event loop; use it as an async context manager, or `await aclose()`.
    """

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        poll: RetryPolicy = DEFAULT_POLL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        long_poll: bool = True,
    ) -> None:
        super().__init__(
            base_url,
            app_key,
            app_secret,
            retry=retry,
            poll=poll,
            clock=clock,
            random=random,
            long_poll=long_poll,
        )
        self._http = httpx.AsyncClient(**self._http_options(), timeout=timeout, transport=transport)
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def submit(self, records: Record | Sequence[Record], *, timeout: Timeout = None) -> JobRef:
        """POST /v1/transactions: one record or a batch; the job is processed asynchronously."""
        return await self._run(self._ops.submit(records, transfers=False, timeout=timeout))

    async def transfer(self, records: Record | Sequence[Record], *, timeout: Timeout = None) -> JobRef:
        """POST /v1/transfers: like `submit`, for Full/Partial Transfer records only."""
        return await self._run(self._ops.submit(records, transfers=True, timeout=timeout))

    async def patch(
        self,
        external_id: str,
        operations: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        *,
        merge: bool = False,
        timeout: Timeout = None,
    ) -> JobRef:
        """PATCH /v1/transactions/{externalId}: a JSON Patch list, or with `merge=True` a merge-patch dict."""
        return await self._run(self._ops.patch(external_id, operations, merge=merge, timeout=timeout))

    async def cancel_transaction(self, external_id: str, *, timeout: Timeout = None) -> JobRef:
        """Cancel the transaction: a merge patch `{"status": "Cancel"}`, applied by a job like any patch."""
        return await self._run(self._ops.cancel_transaction(external_id, timeout=timeout))

    async def status(self, key: str, *, timeout: Timeout = None) -> JobStatus:
        """GET /v1/jobs/insight/status/{key}: the job's current status."""
        return (await self._run(self._ops.status(key, timeout=timeout)))[0]

    async def wait(
        self,
        key: str,
        *,
        timeout: float,
        on_poll: Callable[[JobStatus], None] | None = None,
        request_timeout: Timeout = None,
    ) -> JobStatus:
        """Poll the job until it is terminal and return that status; as `Client.wait`."""
        flow = self._ops.wait(key, timeout=timeout, on_poll=on_poll, request_timeout=request_timeout)
        return await self._run(flow)

    async def get_transaction(self, external_id: str, *, timeout: Timeout = None) -> Transaction:
        """GET /v1/transactions/{externalId}: the transaction; `NotFound` when the organization has none."""
        return await self._run(self._ops.get_transaction(external_id, timeout=timeout))

    def transactions(
        self, *, timeout: Timeout = None, **filters: Unpack[TransactionFilters]
    ) -> AsyncIterator[Transaction]:
        """Every transaction matching the filters, across all pages, for `async for` (fetched lazily)."""
        return self._each(self._ops.listing(filters, timeout=timeout))

    async def _each(self, pages: Pages) -> AsyncIterator[Transaction]:
        while (flow := pages.next_page()) is not None:
            for transaction in await self._run(flow):
                yield transaction

    # --- webhooks (contract 7.3): as `Client`'s, awaited ---

    async def create_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] | None = None,
        description: str | None = None,
        timeout: Timeout = None,
    ) -> dict[str, Any]:
        """POST /v1/webhooks: the new endpoint as JSON, with its `secret` (shown only now)."""
        return await self._run(_webhooks.create(self._ops.pacing, url, events, description, timeout))

    async def webhooks(self, *, timeout: Timeout = None) -> list[dict[str, Any]]:
        """GET /v1/webhooks: the organization's endpoints (without secrets)."""
        return await self._run(_webhooks.listing(self._ops.pacing, timeout))

    async def get_webhook(self, webhook_id: str, *, timeout: Timeout = None) -> dict[str, Any]:
        """GET /v1/webhooks/{id}."""
        return await self._run(_webhooks.read(self._ops.pacing, webhook_id, timeout))

    async def update_webhook(
        self, webhook_id: str, *, timeout: Timeout = None, **changes: Any
    ) -> dict[str, Any]:
        """PATCH /v1/webhooks/{id}: any of url, events, description, enabled."""
        return await self._run(_webhooks.update(self._ops.pacing, webhook_id, changes, timeout))

    async def delete_webhook(self, webhook_id: str, *, timeout: Timeout = None) -> None:
        """DELETE /v1/webhooks/{id}."""
        await self._run(_webhooks.delete(self._ops.pacing, webhook_id, timeout))

    def webhook_deliveries(
        self, webhook_id: str, *, limit: int | None = None, timeout: Timeout = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every logged delivery attempt of the endpoint, newest first, for `async for`."""
        return self._each_delivery(_webhooks.DeliveryPages(self._ops.pacing, webhook_id, limit, timeout))

    async def _each_delivery(self, pages: _webhooks.DeliveryPages) -> AsyncIterator[dict[str, Any]]:
        while (flow := pages.next_page()) is not None:
            for attempt in await self._run(flow):
                yield attempt

    async def replay_webhook(self, webhook_id: str, *, after: int, timeout: Timeout = None) -> int:
        """POST /v1/webhooks/{id}/replay: re-send the endpoint's events after sequence `after`; how many."""
        return await self._run(_webhooks.replay(self._ops.pacing, webhook_id, after, timeout))

    def jobs(self, *, timeout: Timeout = None, **filters: Unpack[JobFilters]) -> AsyncIterator[JobSummary]:
        """The organization's jobs matching the filters, newest first, for `async for` (lazily)."""
        return self._each_page(self._ops.jobs(filters, timeout=timeout))

    async def cancel(self, key: str, *, timeout: Timeout = None) -> JobStatus:
        """Cancel the job; as `Client.cancel`."""
        return await self._run(self._ops.cancel(key, timeout=timeout))

    def results(
        self, key: str, *, outcome: str | None = None, limit: int = RESULTS_PAGE, timeout: Timeout = None
    ) -> AsyncIterator[RecordResult]:
        """Every submitted record's outcome, in batch order, for `async for`; as `Client.results`."""
        return self._each_page(self._ops.results(key, outcome, limit=limit, timeout=timeout))

    async def results_csv(
        self, key: str, file: IO[str], *, outcome: str | None = None, timeout: Timeout = None
    ) -> int:
        """Write the job's results to `file` as CSV, a page at a time; as `Client.results_csv`."""
        writer = CsvWriter(file)
        async for row in self.results(key, outcome=outcome, timeout=timeout):
            writer.write(row)
        return writer.records

    async def _each_page(self, pages: Paged[T]) -> AsyncIterator[T]:
        while (flow := pages.next_page()) is not None:
            for item in await self._run(flow):
                yield item

    async def events(
        self, *, after: int = 0, key: str | None = None, type: str | None = None, follow: bool = True
    ) -> AsyncIterator[Event]:
        """The organization's events, then live ones, for `async for`; as `Client.events`."""
        stream = EventStream(self._ops.pacing, after=after, key=key, kind=type)
        while not follow:
            params, _ = stream.request()
            found, more = await self._run(self._ops.event_page({**params, "limit": "500"}, timeout=None))
            for logged in found:
                yield logged
            if found:
                stream.last = found[-1].sequence
            if not more:
                return
        while not stream.finished:
            params, headers = stream.request()
            pause: float | None
            try:
                async with self._http.stream(
                    "GET", EVENTS_PATH, params=params, headers=headers, timeout=READ_TIMEOUT
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        pause = stream.refused(response)
                    else:
                        stream.opened(response)
                        async for line in response.aiter_lines():
                            event = stream.line(line)
                            if event is not None:
                                yield event
                                if stream.finished:
                                    return
                        pause = stream.ended()
            except httpx.TransportError as exc:
                pause = stream.failed(exc)
            if pause is None:
                return
            await self._sleep(pause)

    async def _run(self, flow: Flow[T]) -> T:
        """Carry out the flow's steps with this client's httpx client and sleep; its result."""
        outcome: Outcome = None
        with closing(flow):
            while True:
                try:
                    step = flow.send(outcome)
                except StopIteration as done:
                    result: T = done.value
                    return result
                outcome = await self._carry_out(step)

    async def _carry_out(self, step: Step) -> Outcome:
        if isinstance(step, Pause):
            await self._sleep(step.seconds)
            return None
        try:
            return await self._http.request(
                step.method,
                step.url,
                headers=step.headers,
                content=step.content,
                params=step.params,
                timeout=httpx.USE_CLIENT_DEFAULT if step.timeout is None else step.timeout,
            )
        except httpx.TransportError as exc:
            return exc
