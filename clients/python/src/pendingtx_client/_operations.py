"""The API's calls as flows (see `_core`): what to send, and what the answer means; shared by both clients."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from pendingtx_client import _models
from pendingtx_client._core import Flow, Pacing, Pause, Timeout, send
from pendingtx_client._errors import WaitTimeout, unexpected
from pendingtx_client._events import EVENTS_PATH, Event, decode_event
from pendingtx_client._listing import JobFilters, TransactionFilters, job_query_params, query_params
from pendingtx_client._models import JobRef, JobStatus, JobSummary, RecordResult, Transaction
from pendingtx_client._retry import RetryPolicy, retry_after

Record = Mapping[str, Any] | Transaction
"""One record to submit: a mapping in the contract's camelCase members, or a `Transaction`."""

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
LISTING = "/v1/transactions"
JOBS = "/v1/jobs/insight"
# The CSV of a job's results: the server's header and lines (GET .../results/{key} with Accept: text/csv).
CSV_HEADER = ("index", "externalId", "outcome", "field", "reason")
# Records per page when a job's results are read whole.
RESULTS_PAGE = 1000
OUTCOMES = ("created", "rejected", "unprocessed")
CANCEL = {"status": "Cancel"}
# The longest hold `wait` asks for (the contract's maximum is 60 s).
MAX_HOLD_SECONDS = 50
# How much longer than its hold a held read may take before it counts as lost.
HOLD_MARGIN_SECONDS = 30.0


def held_timeout(timeout: Timeout, hold: int) -> Timeout:
    """A request's timeout stretched by the `hold` seconds the server may keep its answer."""
    if not hold:
        return timeout
    if timeout is None:
        return httpx.Timeout(HOLD_MARGIN_SECONDS, read=hold + HOLD_MARGIN_SECONDS)
    if isinstance(timeout, httpx.Timeout):
        read = timeout.read
        return httpx.Timeout(
            connect=timeout.connect,
            read=None if read is None else read + hold,
            write=timeout.write,
            pool=timeout.pool,
        )
    return httpx.Timeout(timeout, read=timeout + hold)


def _mapping_as_dict(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise NotImplementedError(f"cannot send a {type(value).__name__} as JSON")


# Decimals go out as JSON strings: exact, and accepted by the contract for amount and units.
_encoder = msgspec.json.Encoder(enc_hook=_mapping_as_dict)


class Operations:
    """Every call of the API as a flow; `poll` paces `wait` when the server gives no Retry-After."""

    def __init__(self, pacing: Pacing, poll: RetryPolicy, *, long_poll: bool = True) -> None:
        self.pacing = pacing
        self.poll = poll
        # Whether `wait` asks the server to hold each read until the job is terminal.
        self.long_poll = long_poll

    def submit(
        self, records: Record | Sequence[Record], *, transfers: bool, timeout: Timeout
    ) -> Flow[JobRef]:
        """POST /v1/transactions, or /v1/transfers with `transfers`."""
        path = "/v1/transfers" if transfers else "/v1/transactions"
        return self._accepted("POST", path, _records_json(records), JSON, timeout)

    def patch(
        self,
        external_id: str,
        operations: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        *,
        merge: bool,
        timeout: Timeout,
    ) -> Flow[JobRef]:
        """PATCH /v1/transactions/{externalId}: a JSON Patch list, or with `merge` a merge-patch mapping."""
        if merge != isinstance(operations, Mapping):
            want = "a dict (merge patch)" if merge else "a list of JSON Patch operations"
            raise TypeError(f"patch(merge={merge}) needs {want}")
        body = _encoder.encode(operations if merge else list(operations))
        return self._accepted(
            "PATCH", _transaction_path(external_id), body, MERGE_PATCH if merge else JSON_PATCH, timeout
        )

    def cancel_transaction(self, external_id: str, *, timeout: Timeout) -> Flow[JobRef]:
        """A merge patch that sets the transaction's status to Cancel."""
        return self.patch(external_id, CANCEL, merge=True, timeout=timeout)

    def status(
        self, key: str, *, timeout: Timeout, deadline: float | None = None
    ) -> Flow[tuple[JobStatus, float | None]]:
        """GET /v1/jobs/insight/status/{key}: the job's status and the server's polling hint."""
        response = yield from self._read_status(key, timeout=timeout, deadline=deadline, hold=0)
        return _models.job_status(response), retry_after(response)

    def _read_status(
        self, key: str, *, timeout: Timeout, deadline: float | None, hold: int
    ) -> Flow[httpx.Response]:
        path = f"/v1/jobs/insight/status/{quote(key, safe='=')}"
        # RFC 7240: a server without long-poll ignores the preference, and the read answers at once.
        headers = {"Prefer": f"wait={hold}"} if hold else None
        return (
            yield from send(self.pacing, "GET", path, deadline=deadline, timeout=timeout, headers=headers)
        )

    def wait(
        self,
        key: str,
        *,
        timeout: float,
        on_poll: Callable[[JobStatus], None] | None,
        request_timeout: Timeout,
    ) -> Flow[JobStatus]:
        """Follow the job until it is terminal; `WaitTimeout` once `timeout` seconds have passed.

        Each read asks the server to hold it until the job is terminal (`Prefer: wait=N`, long-poll);
        a server that held it is asked again at once, one that did not (an older server) is polled
        as its Retry-After says.
        """
        clock = self.pacing.clock
        deadline = clock() + timeout
        polls = 0
        while True:
            hold = max(0, min(int(deadline - clock()), MAX_HOLD_SECONDS)) if self.long_poll else 0
            began = clock()
            response = yield from self._read_status(
                key, timeout=held_timeout(request_timeout, hold), deadline=deadline, hold=hold
            )
            current, hint = _models.job_status(response), retry_after(response)
            if on_poll is not None:
                on_poll(current)
            if current.terminal:
                return current
            remaining = deadline - clock()
            if remaining <= 0:
                raise WaitTimeout(key, timeout, current)
            held = response.headers.get("preference-applied", "").startswith("wait=")
            if held and clock() - began >= hold / 2:
                continue  # held for its time (not cut short, e.g. by a server stopping): ask again now
            polls += 1
            yield Pause(min(self.poll.delay(polls, hint, self.pacing.random), remaining))

    def event_page(self, params: Mapping[str, str], *, timeout: Timeout) -> Flow[tuple[list[Event], bool]]:
        """GET /v1/events as JSON: one page of events, and whether the page was full (more may follow)."""
        response = yield from send(self.pacing, "GET", EVENTS_PATH, params=params, timeout=timeout)
        try:
            page = msgspec.json.decode(response.content, type=_EventPage)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise unexpected(response, "a page of events", exc) from None
        found = [decode_event(msgspec.json.encode(raw).decode(), response) for raw in page.data.results]
        return found, page.paging.next is not None

    def get_transaction(self, external_id: str, *, timeout: Timeout) -> Flow[Transaction]:
        """GET /v1/transactions/{externalId}."""
        response = yield from send(self.pacing, "GET", _transaction_path(external_id), timeout=timeout)
        return _models.transaction(response)

    def listing(self, filters: TransactionFilters, *, timeout: Timeout) -> Pages:
        """The pages of a listing; unknown filter names are a TypeError at once."""
        return Pages(self.pacing, query_params(filters), timeout)

    def jobs(self, filters: JobFilters, *, timeout: Timeout) -> Paged[JobSummary]:
        """The pages of the job list, newest first; unknown filter names are a TypeError at once."""
        return Paged(self.pacing, JOBS, job_query_params(filters), timeout, _models.job_page)

    def cancel(self, key: str, *, timeout: Timeout) -> Flow[JobStatus]:
        """POST /v1/jobs/insight/cancel/{key}: the job's status once the cancel is recorded."""
        path = f"{JOBS}/cancel/{quote(key, safe='=')}"
        response = yield from send(self.pacing, "POST", path, timeout=timeout)
        return _models.job_status(response)

    def results(self, key: str, outcome: str | None, *, limit: int, timeout: Timeout) -> Paged[RecordResult]:
        """The pages of a job's per-record results, of one outcome or all."""
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        params = {"limit": str(limit), **({"outcome": outcome} if outcome else {})}
        path = f"{JOBS}/results/{quote(key, safe='=')}"
        return Paged(self.pacing, path, params, timeout, _models.results_page)

    def _accepted(
        self, method: str, path: str, body: bytes, content_type: str, timeout: Timeout
    ) -> Flow[JobRef]:
        response = yield from send(
            self.pacing, method, path, content=body, content_type=content_type, timeout=timeout
        )
        return _models.job_ref(response)


class _EventResults(msgspec.Struct):
    results: list[dict[str, Any]]


class _EventPaging(msgspec.Struct):
    next: str | None = None


class _EventPage(msgspec.Struct):
    data: _EventResults
    paging: _EventPaging


class Pages:
    """The pages of one listing, one flow per page; the server's `next` link carries filters and cursor."""

    def __init__(self, pacing: Pacing, params: dict[str, str], timeout: Timeout) -> None:
        self._pacing = pacing
        self._url: str | None = LISTING
        self._query: dict[str, str] | None = params
        self._timeout = timeout

    def next_page(self) -> Flow[list[Transaction]] | None:
        """The flow that reads the next page, or None after the last."""
        if self._url is None:
            return None
        return self._read(self._url, self._query)

    def _read(self, url: str, query: dict[str, str] | None) -> Flow[list[Transaction]]:
        response = yield from send(self._pacing, "GET", url, params=query, timeout=self._timeout)
        current = _models.page(response)
        self._url, self._query = current.paging.next, None
        return current.data.results


T = TypeVar("T")


class Paged(Generic[T]):
    """The pages of one paged answer (jobs, results), one flow per page, following `paging.next`."""

    def __init__(
        self,
        pacing: Pacing,
        url: str,
        params: dict[str, str],
        timeout: Timeout,
        read: Callable[[Any], tuple[list[T], str | None]],
    ) -> None:
        self._pacing = pacing
        self._url: str | None = url
        self._query: dict[str, str] | None = params
        self._timeout = timeout
        self._decode = read

    def next_page(self) -> Flow[list[T]] | None:
        """The flow that reads the next page, or None after the last."""
        if self._url is None:
            return None
        return self._read(self._url, self._query)

    def _read(self, url: str, query: dict[str, str] | None) -> Flow[list[T]]:
        response = yield from send(self._pacing, "GET", url, params=query, timeout=self._timeout)
        rows, self._url = self._decode(response)
        self._query = None
        return rows


class CsvWriter:
    """Writes results as the server's CSV: the header, then one line per problem and one per record
    without any."""

    def __init__(self, file: IO[str]) -> None:
        self._writer = csv.writer(file, lineterminator="\r\n")
        self._writer.writerow(CSV_HEADER)
        self.records = 0

    def write(self, row: RecordResult) -> None:
        """One record's lines."""
        self.records += 1
        external_id = row.external_id or ""
        if not row.problems:
            self._writer.writerow((row.index, external_id, row.outcome, "", ""))
        for problem in row.problems:
            self._writer.writerow((row.index, external_id, row.outcome, problem.field, problem.reason))


def write_csv(file: IO[str], results: Iterable[RecordResult]) -> int:
    """Write results as the server's CSV; returns how many records were written."""
    writer = CsvWriter(file)
    for row in results:
        writer.write(row)
    return writer.records


def _transaction_path(external_id: str) -> str:
    return f"/v1/transactions/{quote(external_id, safe='')}"


def _record(record: Record) -> Mapping[str, Any]:
    if isinstance(record, Transaction):
        return {k: v for k, v in record.to_json().items() if k not in _models.SERVER_SET}
    return record


def _records_json(records: Record | Sequence[Record]) -> bytes:
    if isinstance(records, Mapping | Transaction):
        return _encoder.encode(_record(records))
    return _encoder.encode([_record(r) for r in records])
