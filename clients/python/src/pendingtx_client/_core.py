"""The one core of both clients, without I/O: each API call is a generator of steps.

A flow yields `Send` and receives the `httpx.Response`, or the `httpx.TransportError` that stopped
the request; it yields `Pause` to have the driver sleep (and receives None). `Client` runs flows
with httpx's sync client and `time.sleep`, `AsyncClient` with its async client and `asyncio.sleep`:
retries, idempotency keys, deadlines and the reading of answers are written once, here and in
`_operations` (tokens are an httpx auth flow, which httpx itself drives in both).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from pendingtx_client._errors import ApiError, ConnectionFailed, PendingTxError, error_from_response
from pendingtx_client._retry import RETRYABLE_TRANSPORT_ERRORS, RetryPolicy, retry_after

log = logging.getLogger("pendingtx_client")

T = TypeVar("T")

Timeout = float | httpx.Timeout | None
"""Seconds (or an `httpx.Timeout`) for each HTTP request of one call; None: the client's default."""

# Methods whose repetition could create a second job: the server de-duplicates them by this key.
_KEYED_METHODS = frozenset({"POST", "PATCH"})


@dataclass(frozen=True, slots=True)
class Send:
    """Make this HTTP request (relative to the client's base URL) and send back its outcome."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    params: Mapping[str, str] | None = None
    timeout: Timeout = None


@dataclass(frozen=True, slots=True)
class Pause:
    """Sleep this many seconds, then resume the flow."""

    seconds: float


Step = Send | Pause
Outcome = httpx.Response | httpx.TransportError | None
Flow = Generator[Step, Outcome, T]
"""An API call: yields steps, receives their outcomes, returns the call's result."""


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a client paces itself: retry policy, monotonic clock, and jitter in [0, 1)."""

    policy: RetryPolicy
    clock: Callable[[], float]
    random: Callable[[], float]


def send(
    pacing: Pacing,
    method: str,
    url: str,
    *,
    content: bytes | None = None,
    content_type: str | None = None,
    params: Mapping[str, str] | None = None,
    deadline: float | None = None,
    timeout: Timeout = None,
    accept: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Flow[httpx.Response]:
    """The successful answer to one request, or the typed error of its last try.

    Retried: no answer (connection refused or reset, timeout), 429, 503 and any error whose body
    says `transient: true`. The pause is the server's Retry-After when given, else capped jittered
    backoff; `deadline` (on the pacing's clock) stops retrying when the next try would start after it.
    """
    sent = dict(headers or {})
    if content_type:
        sent["Content-Type"] = content_type
    if accept:
        sent["Accept"] = accept
    if method in _KEYED_METHODS:
        sent["Idempotency-Key"] = str(uuid.uuid4())  # once: the same on every retry
    request = Send(method, url, sent, content, params, timeout)
    attempt = 0
    while True:
        attempt += 1
        outcome = yield request
        error, hint = _failure(method, url, outcome)
        if error is None:
            assert isinstance(outcome, httpx.Response)
            return outcome
        pause = _pause(pacing, attempt, hint, deadline)
        if pause is None:
            raise error from outcome if isinstance(outcome, Exception) else None
        log.warning(
            "%s %s failed (%s); try %d of %d in %.2f s",
            method, _path(url), _reason(error), attempt + 1, pacing.policy.max_attempts, pause,
        )  # fmt: skip
        yield Pause(pause)


def _failure(method: str, url: str, outcome: Outcome) -> tuple[PendingTxError | None, float | None]:
    """(None, None) for a success; else the error and the server's Retry-After; raises what is final."""
    if isinstance(outcome, httpx.TransportError):
        failed = ConnectionFailed(
            f"{method} {_path(url)}: no answer from the server ({type(outcome).__name__}: {outcome})"
        )
        if not isinstance(outcome, RETRYABLE_TRANSPORT_ERRORS):
            raise failed from outcome
        return failed, None
    if not isinstance(outcome, httpx.Response):
        raise TypeError(f"a Send step needs a response or a transport error back, not {outcome!r}")
    if outcome.is_success:
        return None, None
    error = error_from_response(outcome)
    if not error.transient:
        raise error
    return error, retry_after(outcome)


def _pause(pacing: Pacing, attempt: int, hint: float | None, deadline: float | None) -> float | None:
    """How long to wait before the next try, or None when there is to be no next try."""
    if attempt >= pacing.policy.max_attempts:
        return None
    pause = pacing.policy.delay(attempt, hint, pacing.random)
    if deadline is not None and pacing.clock() + pause > deadline:
        return None
    return pause


def _path(url: str) -> str:
    return httpx.URL(url).path


def _reason(error: PendingTxError) -> str:
    if isinstance(error, ApiError):
        return f"{error.status} {error.code}".strip()
    return str(error)
