"""Sending one API request: an Idempotency-Key fixed before the retries, retries, typed errors."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping

import httpx

from pendingtx_client._errors import ApiError, ConnectionFailed, PendingTxError, error_from_response
from pendingtx_client._retry import RETRYABLE_TRANSPORT_ERRORS, RetryPolicy, retry_after

log = logging.getLogger("pendingtx_client")

# Methods whose repetition could create a second job: the server de-duplicates them by this key.
_KEYED_METHODS = frozenset({"POST", "PATCH"})


class Requester:
    """Sends requests through an httpx client and retries what is worth retrying.

    Retried: no answer (connection refused or reset, timeout), 429, 503 and any error whose body
    says `transient: true`. The pause is the server's Retry-After when given, else capped jittered
    backoff; `deadline` (on `clock`) stops retrying early when the next try would start after it.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        random: Callable[[], float],
    ) -> None:
        self.http = http
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.random = random

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> httpx.Response:
        """The successful answer to the request, or the typed error of its last try."""
        headers = {"Content-Type": content_type} if content_type else {}
        if method in _KEYED_METHODS:
            headers["Idempotency-Key"] = str(uuid.uuid4())  # once: the same on every retry
        attempt = 0
        while True:
            attempt += 1
            cause: Exception | None = None
            try:
                response = self.http.request(method, url, content=content, headers=headers, params=params)
            except httpx.TransportError as exc:
                if not isinstance(exc, RETRYABLE_TRANSPORT_ERRORS):
                    raise _connection_failed(method, url, exc) from exc
                error: PendingTxError = _connection_failed(method, url, exc)
                cause, hint = exc, None
            else:
                if response.is_success:
                    return response
                error = error_from_response(response)
                if not (isinstance(error, ApiError) and error.transient):
                    raise error
                hint = retry_after(response)
            pause = self._pause(attempt, hint, deadline)
            if pause is None:
                raise error from cause
            log.warning(
                "%s %s failed (%s); try %d of %d in %.2f s",
                method, _path(url), _reason(error), attempt + 1, self.policy.max_attempts, pause,
            )  # fmt: skip
            self.sleep(pause)

    def _pause(self, attempt: int, hint: float | None, deadline: float | None) -> float | None:
        """How long to wait before the next try, or None when there is to be no next try."""
        if attempt >= self.policy.max_attempts:
            return None
        pause = self.policy.delay(attempt, hint, self.random)
        if deadline is not None and self.clock() + pause > deadline:
            return None
        return pause


def _path(url: str) -> str:
    return httpx.URL(url).path


def _reason(error: PendingTxError) -> str:
    if isinstance(error, ApiError):
        return f"{error.status} {error.code}".strip()
    return str(error)


def _connection_failed(method: str, url: str, exc: httpx.TransportError) -> ConnectionFailed:
    return ConnectionFailed(f"{method} {_path(url)}: no answer from the server ({type(exc).__name__}: {exc})")
