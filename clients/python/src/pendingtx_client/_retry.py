"""When to retry and how long to wait: the server's Retry-After first, else capped jittered backoff."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# No answer arrived, or the connection broke before a whole one did: worth sending again (POSTs
# and PATCHes carry an Idempotency-Key, so the server can recognise a repeat).
RETRYABLE_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often one request is tried, and how long to pause between tries.

    The n-th pause (n from 1) is `min(max_delay, base_delay * 2**(n-1))`, scaled by a random factor
    in [0.5, 1) so that many clients do not retry in step. A `Retry-After` from the server wins
    over that, up to `max_retry_after` seconds.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < self.base_delay <= self.max_delay:
            raise ValueError("need 0 < base_delay <= max_delay")

    def backoff(self, attempt: int, random: Callable[[], float]) -> float:
        """The pause after the `attempt`-th failure, without a server hint: capped, with jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 62))
        return ceiling * (0.5 + random() / 2)

    def delay(self, attempt: int, retry_after: float | None, random: Callable[[], float]) -> float:
        """The pause after the `attempt`-th failure: the server's hint when it gave one."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.backoff(attempt, random)


def retry_after(response: httpx.Response, *, now: Callable[[], datetime] | None = None) -> float | None:
    """The `Retry-After` header in seconds (delta-seconds or an HTTP date), or None if absent/invalid."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, now or (lambda: datetime.now(UTC)))
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _seconds_until(http_date: str, now: Callable[[], datetime]) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - now()).total_seconds()
