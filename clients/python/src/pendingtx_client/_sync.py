"""`Client`: the pendingtx API as blocking Python calls."""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from pendingtx_client._operations import RESULTS_PAGE, Paged, Record, write_csv
from pendingtx_client._retry import RetryPolicy

T = TypeVar("T")


class Client(BaseClient):
    """A client of one pendingtx server for one application (AppKey and AppSecret).

    `timeout` is the default of each HTTP request (every method also takes its own `timeout=`).
    `transport` replaces the network (an `httpx.MockTransport`, or a bridge to an in-process app).
    `retry` bounds how often one request is tried; `poll` paces `wait` when the server gives no
    Retry-After (its `max_attempts` is unused: the deadline bounds a wait). `sleep`, `clock`
    (monotonic seconds) and `random` (jitter in [0, 1)) are there so that tests never really wait.
    `long_poll=False` makes `wait` poll without asking the server to hold its reads.
    Safe to share between threads. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        poll: RetryPolicy = DEFAULT_POLL,
        sleep: Callable[[float], None] = time.sleep,
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
        self._http = httpx.Client(**self._http_options(), timeout=timeout, transport=transport)
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def submit(self, records: Record | Sequence[Record], *, timeout: Timeout = None) -> JobRef:
        """POST /v1/transactions: one record or a batch; the job is processed asynchronously."""
        return self._run(self._ops.submit(records, transfers=False, timeout=timeout))

    def transfer(self, records: Record | Sequence[Record], *, timeout: Timeout = None) -> JobRef:
        """POST /v1/transfers: like `submit`, for Full/Partial Transfer records only."""
        return self._run(self._ops.submit(records, transfers=True, timeout=timeout))

    def patch(
        self,
        external_id: str,
        operations: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        *,
        merge: bool = False,
        timeout: Timeout = None,
    ) -> JobRef:
        """PATCH /v1/transactions/{externalId}: a JSON Patch list, or with `merge=True` a merge-patch dict."""
        return self._run(self._ops.patch(external_id, operations, merge=merge, timeout=timeout))

    def cancel_transaction(self, external_id: str, *, timeout: Timeout = None) -> JobRef:
        """Cancel the transaction: a merge patch `{"status": "Cancel"}`, applied by a job like any patch."""
        return self._run(self._ops.cancel_transaction(external_id, timeout=timeout))

    def status(self, key: str, *, timeout: Timeout = None) -> JobStatus:
        """GET /v1/jobs/insight/status/{key}: the job's current status."""
        return self._run(self._ops.status(key, timeout=timeout))[0]

    def wait(
        self,
        key: str,
        *,
        timeout: float,
        on_poll: Callable[[JobStatus], None] | None = None,
        request_timeout: Timeout = None,
    ) -> JobStatus:
        """Follow the job until it is terminal and return that status (`Failed` included).

        Each read asks the server to hold it until the job is terminal (long-poll, `Prefer: wait`),
        and is made again at once when it was held; a server that does not hold reads is polled as
        its Retry-After says, else with capped jittered backoff. Raises `WaitTimeout` once `timeout`
        seconds (monotonic) have passed. `on_poll` sees every status read; `request_timeout` bounds
        each read's request, plus the time the server may hold it.
        """
        return self._run(
            self._ops.wait(key, timeout=timeout, on_poll=on_poll, request_timeout=request_timeout)
        )

    def get_transaction(self, external_id: str, *, timeout: Timeout = None) -> Transaction:
        """GET /v1/transactions/{externalId}: the transaction; `NotFound` when the organization has none."""
        return self._run(self._ops.get_transaction(external_id, timeout=timeout))

    def transactions(
        self, *, timeout: Timeout = None, **filters: Unpack[TransactionFilters]
    ) -> Iterator[Transaction]:
        """Every transaction matching the filters, across all pages (fetched lazily, `limit` per page)."""
        pages = self._ops.listing(filters, timeout=timeout)

        def each() -> Iterator[Transaction]:
            while (flow := pages.next_page()) is not None:
                yield from self._run(flow)

        return each()

    # --- webhooks (contract 7.3); verify deliveries with `pendingtx_client.webhooks.verify` ---

    def create_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] | None = None,
        description: str | None = None,
        timeout: Timeout = None,
    ) -> dict[str, Any]:
        """POST /v1/webhooks: the new endpoint as JSON, with its `secret` (shown only now)."""
        return self._run(_webhooks.create(self._ops.pacing, url, events, description, timeout))

    def webhooks(self, *, timeout: Timeout = None) -> list[dict[str, Any]]:
        """GET /v1/webhooks: the organization's endpoints (without secrets)."""
        return self._run(_webhooks.listing(self._ops.pacing, timeout))

    def get_webhook(self, webhook_id: str, *, timeout: Timeout = None) -> dict[str, Any]:
        """GET /v1/webhooks/{id}."""
        return self._run(_webhooks.read(self._ops.pacing, webhook_id, timeout))

    def update_webhook(self, webhook_id: str, *, timeout: Timeout = None, **changes: Any) -> dict[str, Any]:
        """PATCH /v1/webhooks/{id}: any of url, events, description, enabled."""
        return self._run(_webhooks.update(self._ops.pacing, webhook_id, changes, timeout))

    def delete_webhook(self, webhook_id: str, *, timeout: Timeout = None) -> None:
        """DELETE /v1/webhooks/{id}."""
        self._run(_webhooks.delete(self._ops.pacing, webhook_id, timeout))

    def webhook_deliveries(
        self, webhook_id: str, *, limit: int | None = None, timeout: Timeout = None
    ) -> Iterator[dict[str, Any]]:
        """Every logged delivery attempt of the endpoint, newest first, across pages (fetched lazily)."""
        pages = _webhooks.DeliveryPages(self._ops.pacing, webhook_id, limit, timeout)

        def each() -> Iterator[dict[str, Any]]:
            while (flow := pages.next_page()) is not None:
                yield from self._run(flow)

        return each()

    def replay_webhook(self, webhook_id: str, *, after: int, timeout: Timeout = None) -> int:
        """POST /v1/webhooks/{id}/replay: re-send the endpoint's events after sequence `after`; how many."""
        return self._run(_webhooks.replay(self._ops.pacing, webhook_id, after, timeout))

    def jobs(self, *, timeout: Timeout = None, **filters: Unpack[JobFilters]) -> Iterator[JobSummary]:
        """The organization's jobs matching the filters, newest first, across all pages (lazily)."""
        return self._each(self._ops.jobs(filters, timeout=timeout))

    def cancel(self, key: str, *, timeout: Timeout = None) -> JobStatus:
        """POST /v1/jobs/insight/cancel/{key}: a waiting job is `Cancelled` at once, one in progress
        stops at its next chunk (still `In Progress` here); `ApiError` 409 when it had finished."""
        return self._run(self._ops.cancel(key, timeout=timeout))

    def results(
        self, key: str, *, outcome: str | None = None, limit: int = RESULTS_PAGE, timeout: Timeout = None
    ) -> Iterator[RecordResult]:
        """Every submitted record's outcome (`created`, `rejected`, `unprocessed`; or only `outcome`),
        in batch order, across all pages (fetched lazily, `limit` per page)."""
        return self._each(self._ops.results(key, outcome, limit=limit, timeout=timeout))

    def results_csv(
        self, key: str, file: IO[str], *, outcome: str | None = None, timeout: Timeout = None
    ) -> int:
        """Write the job's results to `file` as the server's CSV, a page at a time (each page retried
        on its own); returns how many records were written."""
        return write_csv(file, self.results(key, outcome=outcome, timeout=timeout))

    def _each(self, pages: Paged[T]) -> Iterator[T]:
        while (flow := pages.next_page()) is not None:
            yield from self._run(flow)

    def events(
        self, *, after: int = 0, key: str | None = None, type: str | None = None, follow: bool = True
    ) -> Iterator[Event]:
        """The organization's events after sequence `after` (and of job `key`, of `type`), then live
        ones as they happen, from the server's stream (`GET /v1/events`, server-sent events).

        A dropped connection is resumed after the last event seen (`Last-Event-ID`), so none is
        missed or repeated. With `key` the iteration ends after that job's `job.completed`;
        otherwise it goes on until the caller stops. With `follow=False` only the events logged so
        far are read (JSON pages), and the iteration ends.
        """
        stream = EventStream(self._ops.pacing, after=after, key=key, kind=type)

        def each() -> Iterator[Event]:
            while not follow:
                params, _ = stream.request()
                found, more = self._run(self._ops.event_page({**params, "limit": "500"}, timeout=None))
                yield from found
                if found:
                    stream.last = found[-1].sequence
                if not more:
                    return
            while not stream.finished:
                params, headers = stream.request()
                pause: float | None
                try:
                    with self._http.stream(
                        "GET", EVENTS_PATH, params=params, headers=headers, timeout=READ_TIMEOUT
                    ) as response:
                        if not response.is_success:
                            response.read()
                            pause = stream.refused(response)
                        else:
                            stream.opened(response)
                            for line in response.iter_lines():
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
                self._sleep(pause)

        return each()

    def _run(self, flow: Flow[T]) -> T:
        """Carry out the flow's steps with this client's httpx client and sleep; its result."""
        outcome: Outcome = None
        with closing(flow):
            while True:
                try:
                    step = flow.send(outcome)
                except StopIteration as done:
                    result: T = done.value
                    return result
                outcome = self._carry_out(step)

    def _carry_out(self, step: Step) -> Outcome:
        if isinstance(step, Pause):
            self._sleep(step.seconds)
            return None
        try:
            return self._http.request(
                step.method,
                step.url,
                headers=step.headers,
                content=step.content,
                params=step.params,
                timeout=httpx.USE_CLIENT_DEFAULT if step.timeout is None else step.timeout,
            )
        except httpx.TransportError as exc:
            return exc
