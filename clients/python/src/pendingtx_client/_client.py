"""`Client`: the pendingtx API as Python calls."""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Unpack
from urllib.parse import quote

import httpx
import msgspec

from pendingtx_client import _models
from pendingtx_client._auth import TokenAuth
from pendingtx_client._errors import WaitTimeout
from pendingtx_client._listing import TransactionFilters, query_params
from pendingtx_client._models import JobRef, JobStatus, Transaction
from pendingtx_client._requester import Requester
from pendingtx_client._retry import RetryPolicy, retry_after

Record = Mapping[str, Any] | Transaction
"""One record to submit: a mapping in the contract's camelCase members, or a `Transaction`."""

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"

DEFAULT_RETRY = RetryPolicy()
DEFAULT_POLL = RetryPolicy(base_delay=0.5, max_delay=5.0)


def _mapping_as_dict(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise NotImplementedError(f"cannot send a {type(value).__name__} as JSON")


# Decimals go out as JSON strings: exact, and accepted by the contract for amount and units.
_encoder = msgspec.json.Encoder(enc_hook=_mapping_as_dict)


def _record(record: Record) -> Mapping[str, Any]:
    if isinstance(record, Transaction):
        return {k: v for k, v in record.to_json().items() if k not in _models.SERVER_SET}
    return record


def _user_agent() -> str:
    try:
        return f"pendingtx-client/{version('pendingtx-client')}"
    except PackageNotFoundError:  # running from a source tree
        return "pendingtx-client"


class Client:
    """A client of one pendingtx server for one application (AppKey and AppSecret).

    `transport` replaces the network (an `httpx.MockTransport`, or a bridge to an in-process app).
    `retry` bounds how often one request is tried; `poll` paces `wait` when the server gives no
    Retry-After (its `max_attempts` is unused: the deadline bounds a wait). `sleep`, `clock`
    (monotonic seconds) and `random` (jitter in [0, 1)) are there so that tests never really wait.
    Safe to share between threads. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        poll: RetryPolicy = DEFAULT_POLL,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if not (base_url and app_key and app_secret):
            raise ValueError("base_url, app_key and app_secret are all required")
        base = base_url.rstrip("/")
        self.base_url = base
        self.app_key = app_key
        auth = TokenAuth(
            token_url=f"{base}/v2/oauthtoken", app_key=app_key, app_secret=app_secret, clock=clock
        )
        http = httpx.Client(
            base_url=base,
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": _user_agent(), "Accept": JSON},
        )
        self._requests = Requester(http, policy=retry, sleep=sleep, clock=clock, random=random)
        self._poll = poll

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, app_key={self.app_key!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._requests.http.close()

    def submit(self, records: Record | Sequence[Record]) -> JobRef:
        """POST /v1/transactions: one record or a batch; the job is processed asynchronously."""
        return self._accepted("POST", "/v1/transactions", _records_json(records), JSON)

    def transfer(self, records: Record | Sequence[Record]) -> JobRef:
        """POST /v1/transfers: like `submit`, for Full/Partial Transfer records only."""
        return self._accepted("POST", "/v1/transfers", _records_json(records), JSON)

    def patch(
        self,
        external_id: str,
        operations: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        *,
        merge: bool = False,
    ) -> JobRef:
        """PATCH /v1/transactions/{externalId}: a JSON Patch list, or with `merge=True` a merge-patch dict."""
        if merge != isinstance(operations, Mapping):
            want = "a dict (merge patch)" if merge else "a list of JSON Patch operations"
            raise TypeError(f"patch(merge={merge}) needs {want}")
        body = _encoder.encode(operations if merge else list(operations))
        path = f"/v1/transactions/{quote(external_id, safe='')}"
        return self._accepted("PATCH", path, body, MERGE_PATCH if merge else JSON_PATCH)

    def status(self, key: str) -> JobStatus:
        """GET /v1/jobs/insight/status/{key}: the job's current status."""
        return self._status(key)[0]

    def wait(
        self, key: str, *, timeout: float, on_poll: Callable[[JobStatus], None] | None = None
    ) -> JobStatus:
        """Poll the job until it is terminal and return that status (`Failed` included).

        Pauses as the server's Retry-After says, else with capped jittered backoff; raises
        `WaitTimeout` once `timeout` seconds (monotonic) have passed. `on_poll` sees every status read.
        """
        clock = self._requests.clock
        deadline = clock() + timeout
        polls = 0
        while True:
            current, hint = self._status(key, deadline=deadline)
            if on_poll is not None:
                on_poll(current)
            if current.terminal:
                return current
            remaining = deadline - clock()
            if remaining <= 0:
                raise WaitTimeout(key, timeout, current)
            polls += 1
            self._requests.sleep(min(self._poll.delay(polls, hint, self._requests.random), remaining))

    def transactions(self, **filters: Unpack[TransactionFilters]) -> Iterator[Transaction]:
        """Every transaction matching the filters, across all pages (fetched lazily, `limit` per page)."""
        return self._listing(query_params(filters))

    def _listing(self, params: dict[str, str]) -> Iterator[Transaction]:
        url: str | None = "/v1/transactions"
        query: dict[str, str] | None = params
        while url is not None:
            current = _models.page(self._requests.request("GET", url, params=query))
            yield from current.data.results
            url, query = current.paging.next, None  # the link carries the filters and the cursor

    def _accepted(self, method: str, path: str, body: bytes, content_type: str) -> JobRef:
        response = self._requests.request(method, path, content=body, content_type=content_type)
        return _models.job_ref(response)

    def _status(self, key: str, *, deadline: float | None = None) -> tuple[JobStatus, float | None]:
        path = f"/v1/jobs/insight/status/{quote(key, safe='=')}"
        response = self._requests.request("GET", path, deadline=deadline)
        return _models.job_status(response), retry_after(response)


def _records_json(records: Record | Sequence[Record]) -> bytes:
    if isinstance(records, Mapping | Transaction):
        return _encoder.encode(_record(records))
    return _encoder.encode([_record(r) for r in records])
