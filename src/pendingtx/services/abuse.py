"""Abuse limits: failed client authentications at the token endpoint, the secret checks a process runs
at once, and each application's /v1 budget.

Failures, authentications in flight and budgets are counted in one of the fixed-window storages of
storage.rate_counters (budgets through `limits`' fixed-window strategy), which run on the service's
clock: a window opens at a counter's first hit and lasts its length.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.strategies import FixedWindowRateLimiter

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.config import Settings
from pendingtx.domain.networks import Address
from pendingtx.storage.rate_counters import Counters

# Longer AppKeys than any issued one (a guesser's) are counted by digest, to bound the key's size.
_LONGEST_KEY = 64
# One IPv6 host usually holds a whole /64: counting its addresses one by one would let it rotate.
_IPV6_PREFIX = 64
# Applications whose counter keys and leases are remembered at once (forgotten all together beyond).
_MAX_KEPT = 10_000


def _retry_after(limiter: FixedWindowRateLimiter, item: RateLimitItem, identity: str, clock: Clock) -> int:
    """Whole seconds until the identity's window closes (at least 1)."""
    reset = limiter.get_window_stats(item, identity).reset_time
    return max(1, math.ceil(reset - clock().timestamp()))


class _Lease:
    """Requests of one application's window that this process has taken from the shared count."""

    __slots__ = ("expires_at", "left")

    def __init__(self, left: int, expires_at: float) -> None:
        self.left = left
        self.expires_at = expires_at


# A shared budget is taken from its counter this many requests at a time at most (see Budget).
MAX_LEASE = 256


class Budget:
    """A number of requests each application may make per window; past it, 429 until the window closes.

    Over a storage that counts in bulk (`reserve`, the database counters), a process takes a lease
    of up to `limit // 100` requests (at most MAX_LEASE) from the shared count at a time and spends it
    in memory: the budget is never exceeded, but while other processes hold unspent leases a caller
    may be refused up to that many requests per process early. Under 200 requests a window,
    every request is counted in the storage.
    """

    def __init__(
        self, limiter: FixedWindowRateLimiter, item: RateLimitItem, *, clock: Clock, what: str
    ) -> None:
        self._limiter = limiter
        self._item = item
        self._clock = clock
        self._what = what
        self._expiry = item.get_expiry()
        storage = limiter.storage
        self._reserve = getattr(storage, "reserve", None)
        self._lease_size = max(1, min(MAX_LEASE, item.amount // 100)) if self._reserve is not None else 1
        self._incr = storage.incr
        self._keys: dict[int, str] = {}
        self._leases: dict[int, _Lease] = {}
        self._lock = threading.Lock()

    def _key(self, app_id: int) -> str:
        key = self._keys.get(app_id)
        if key is None:
            if len(self._keys) >= _MAX_KEPT:
                self._keys.clear()
            key = self._keys[app_id] = self._item.key_for(str(app_id))
        return key

    def _admitted(self, app_id: int) -> bool:
        if self._lease_size == 1:
            # The limiter's own rule (`hit`), on a key made once per application.
            return self._incr(self._key(app_id), self._expiry, amount=1) <= self._item.amount
        if self.spend_leased(app_id):
            return True
        assert self._reserve is not None
        hits, expires_at = self._reserve(self._key(app_id), self._expiry, self._lease_size)
        # Of the requests just taken, those past the limit are not to be spent.
        granted = self._lease_size - max(0, hits - self._item.amount)
        if granted <= 0:
            return False
        with self._lock:
            if len(self._leases) >= _MAX_KEPT:
                self._leases.clear()
            lease = self._leases.get(app_id)
            if lease is not None and lease.expires_at == expires_at:
                lease.left += granted - 1
            else:
                self._leases[app_id] = _Lease(granted - 1, expires_at)
        return True

    def spend_leased(self, app_id: int) -> bool:
        """Count one request from this process's unspent lease, without the storage; False when none is left.

        Callers that must not block (the event loop) try this first and `charge` elsewhere otherwise.
        """
        if self._lease_size == 1:
            return False
        now = self._clock().timestamp()
        with self._lock:
            lease = self._leases.get(app_id)
            if lease is not None and lease.left > 0 and lease.expires_at > now:
                lease.left -= 1
                return True
        return False

    def charge(self, app_id: int) -> None:
        """Count one request of the application, or RateLimited when its budget is spent."""
        if self._admitted(app_id):
            return
        identity = str(app_id)
        wait = _retry_after(self._limiter, self._item, identity, self._clock)
        raise errors.RateLimited(
            f"Rate limit of {self._item.amount} {self._what} per minute exceeded; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def _key_identity(app_key: str) -> str:
    if len(app_key) <= _LONGEST_KEY and app_key.isprintable():
        return app_key
    return "sha256:" + hashlib.sha256(app_key.encode("utf-8", "surrogatepass")).hexdigest()


def _address_identity(address: Address) -> str:
    if isinstance(address, IPv6Address):
        return str(IPv6Network((address, _IPV6_PREFIX), strict=False))
    return str(address)


# An attempt in flight is counted for at most this long (one that never finishes, say in a process
# that died, stops counting then); in practice it finishes within seconds.
IN_FLIGHT_SECONDS = 60


@dataclass(frozen=True, slots=True)
class _Counter:
    """One identity's failures and attempts in flight (an AppKey's, or an address's)."""

    failures: str
    in_flight: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """A client authentication whose secret is being checked, counted among the attempts in flight."""

    counters: tuple[_Counter, ...]


class AuthFailures:
    """Failed client authentications, counted per AppKey and per client address.

    Once either has `limit` failures in its window, every attempt with that AppKey or from that
    address, the right secret included, is refused with 429 until the window that opened at the
    first failure closes; the attempts refused so do not count. Attempts whose secret is being
    checked count against the limit too (`reserve` until `finish`): however many arrive at once,
    no more than `limit` secrets are checked per window for one AppKey or address, unless some of
    them were right. An attempt refused because too many are in flight gets 429 with a short wait.
    """

    def __init__(self, counters: Counters, *, limit: int, window_seconds: int, clock: Clock):
        self._counters = counters
        self._limit = limit
        self._window = window_seconds
        self._clock = clock

    @staticmethod
    def _counters_of(app_key: str, address: Address | None) -> tuple[_Counter, ...]:
        identities = [f"key/{_key_identity(app_key)}"]
        if address is not None:  # an unknown address (a Unix socket peer) is counted by key only
            identities.append(f"address/{_address_identity(address)}")
        return tuple(_Counter(f"auth-failures/{i}", f"auth-in-flight/{i}") for i in identities)

    def reserve(self, app_key: str, address: Address | None) -> Attempt:
        """Count an attempt in flight before its secret is checked; RateLimited (and nothing counted)
        when this AppKey or this address is locked out, or has as many attempts in flight as it
        has failures left.
        """
        attempt = Attempt(self._counters_of(app_key, address))
        lockouts: list[int] = []
        crowded = False
        for counter in attempt.counters:
            # In flight first, failures after: `finish` counts a failure before the attempt leaves
            # the flight, so concurrent attempts always see each other in one count or the other.
            in_flight = self._counters.incr(counter.in_flight, IN_FLIGHT_SECONDS)
            failed = self._counters.get(counter.failures)
            if failed >= self._limit:
                lockouts.append(self._lockout_left(counter))
            crowded = crowded or failed + in_flight > self._limit
        if lockouts or crowded:
            self.finish(attempt, failed=False)
        if lockouts:
            wait = max(lockouts)
            raise errors.RateLimited(
                f"Too many failed client authentications; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        if crowded:
            # The attempts in flight are over within seconds; one of them may have been right.
            raise errors.RateLimited(
                "Too many client authentications in progress; retry in 1 s", headers={"Retry-After": "1"}
            )
        return attempt

    def _lockout_left(self, counter: _Counter) -> int:
        closes = self._counters.get_expiry(counter.failures)
        return max(1, math.ceil(closes - self._clock().timestamp()))

    def finish(self, attempt: Attempt, *, failed: bool) -> None:
        """The attempt is over: count it as a failure when `failed` (a wrong secret, not an unchecked one)."""
        for counter in attempt.counters:
            if failed:
                self._counters.incr(counter.failures, self._window)
            self._counters.release(counter.in_flight)


class SecretChecks:
    """At most `limit` client secrets checked at once in the process: each Argon2 check holds 64 MiB.

    A check that finds no slot free before its deadline is refused with 503 and `Retry-After`.
    """

    def __init__(self, limit: int, *, wait_seconds: float) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Checks waiting for a slot right now."""
        return self._waiting

    def deadline(self) -> float:
        """The latest moment (`time.monotonic()`) by which a check asked for now may start."""
        return time.monotonic() + self._wait_seconds

    @contextmanager
    def slot(self, deadline: float) -> Iterator[None]:
        """Hold a slot while checking a secret; ServiceUnavailable when none frees up by `deadline`."""
        with self._lock:
            self._waiting += 1
        try:
            acquired = self._slots.acquire(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise errors.ServiceUnavailable("Too many client authentications in progress; retry shortly")
        try:
            yield
        finally:
            self._slots.release()


@dataclass(frozen=True)
class AbuseLimits:
    """Every abuse limit of one process, over one counter storage."""

    auth_failures: AuthFailures
    secret_checks: SecretChecks
    requests: Budget
    status_reads: Budget

    @classmethod
    def from_settings(cls, settings: Settings, storage: Counters, *, clock: Clock) -> AbuseLimits:
        """The limits the settings ask for, counted in `storage` (see storage.rate_counters)."""
        limiter = FixedWindowRateLimiter(storage)
        return cls(
            auth_failures=AuthFailures(
                storage,
                limit=settings.auth_failure_limit,
                window_seconds=settings.auth_failure_window_seconds,
                clock=clock,
            ),
            secret_checks=SecretChecks(
                settings.max_concurrent_secret_checks, wait_seconds=settings.secret_check_wait_seconds
            ),
            requests=Budget(
                limiter,
                RateLimitItemPerMinute(settings.app_requests_per_minute, namespace="app-requests"),
                clock=clock,
                what="requests",
            ),
            status_reads=Budget(
                limiter,
                RateLimitItemPerMinute(settings.app_status_reads_per_minute, namespace="app-status-reads"),
                clock=clock,
                what="status reads",
            ),
        )
