"""`AsyncClient`: the same calls as `Client`, awaited, on httpx's async client."""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import closing
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from pendingtx_client._base import DEFAULT_POLL, DEFAULT_RETRY, DEFAULT_TIMEOUT, BaseClient
from pendingtx_client._core import Flow, Outcome, Pause, Step, Timeout
from pendingtx_client._events import EVENTS_PATH, READ_TIMEOUT, Event, EventStream
from pendingtx_client._listing import TransactionFilters
from pendingtx_client._models import JobRef, JobStatus, Transaction
from pendingtx_client._operations import Pages, Record
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
