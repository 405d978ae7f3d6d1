"""Counters for the `limits` library, on the service's clock: in memory, or in the database.

Both classes are `limits.storage.Storage` backends for its fixed-window strategy (`incr`, `get`,
`get_expiry`, `clear`, `reset`, `check`), handed to `limits.FixedWindowRateLimiter` as instances.
limits' own storages read `time.time()`; these read the injected clock instead, so a window opens
at a counter's first hit on the same clock as everything else, and tests move that clock instead
of sleeping.

Beyond limits' interface, `release` gives hits back (services.abuse counts a client authentication
in flight while its secret is checked, and gives the count back when it is over). A window whose
hits have all been given back is no window: the next hit opens a new one.

`MemoryCounters` serves one process (the SQLite deployment) for a dictionary lookup per hit.
`DatabaseCounters` keeps the counts in the `rate_counters` table, so that every API process on one
PostgreSQL shares them: a hit is one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from typing import Any

import sqlalchemy as sa
from limits.storage import Storage

from pendingtx.clock import Clock
from pendingtx.storage.driver import Dialect, Statement
from pendingtx.storage.driver.detached import DetachedStatements
from pendingtx.storage.tables import rate_counters

# How often, on the clock, expired counters are deleted.
SWEEP_SECONDS = 60.0


class _Window:
    __slots__ = ("expires_at", "hits")

    def __init__(self, hits: int, expires_at: float) -> None:
        self.hits = hits
        self.expires_at = expires_at


class Counters(Storage):
    """A storage for limits' fixed-window strategy that can also give hits back."""

    @abstractmethod
    def release(self, key: str, amount: int = 1) -> None:
        """Take back up to `amount` hits from the key's open window (none when no window is open)."""


class MemoryCounters(Counters):
    """Fixed-window counters in this process's memory; safe to use from several threads."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()

    def _now(self) -> float:
        return self._clock().timestamp()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count `amount` hits; a window of `expiry` seconds opens at the first hit after the last closed."""
        now = self._now()
        with self._lock:
            window = self._windows.get(key)
            if window is None or window.expires_at <= now or window.hits <= 0:
                if now >= self._next_sweep:
                    self._sweep(now)
                window = self._windows[key] = _Window(0, now + expiry)
            window.hits += amount
            return window.hits

    def release(self, key: str, amount: int = 1) -> None:
        """Take back up to `amount` hits from the key's open window (none when no window is open)."""
        with self._lock:
            window = self._live(key)
            if window is not None:
                window.hits = max(0, window.hits - amount)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_SECONDS
        for key in [k for k, w in self._windows.items() if w.expires_at <= now]:
            del self._windows[key]

    def _live(self, key: str) -> _Window | None:
        window = self._windows.get(key)
        return window if window is not None and window.expires_at > self._now() else None

    def get(self, key: str) -> int:
        """Hits in the key's open window (0 when none is open)."""
        window = self._live(key)
        return window.hits if window is not None else 0

    def get_expiry(self, key: str) -> float:
        """When the key's open window closes (now when none is open), in seconds since the epoch."""
        window = self._live(key)
        return window.expires_at if window is not None else self._now()

    def clear(self, key: str) -> None:
        """Forget one key's window."""
        with self._lock:
            self._windows.pop(key, None)

    def reset(self) -> int | None:
        """Forget every window; returns how many there were."""
        with self._lock:
            count = len(self._windows)
            self._windows.clear()
        return count

    def check(self) -> bool:
        """Always healthy."""
        return True

    def __len__(self) -> int:
        return len(self._windows)


# Inline, not a parameter: Prepared statements take only named parameters.
_ZERO: sa.ColumnClause[int] = sa.literal_column("0")


def _upsert(dialect: Dialect) -> Any:
    """Count hits in one statement: a new, expired or emptied row starts a window, a live one adds to it."""
    new = dialect.upsert(rate_counters).values(
        key=sa.bindparam("key"), hits=sa.bindparam("amount"), expires_at=sa.bindparam("expires_at")
    )
    expired = sa.or_(rate_counters.c.expires_at <= sa.bindparam("now"), rate_counters.c.hits <= _ZERO)
    return new.on_conflict_do_update(
        index_elements=[rate_counters.c.key],
        set_={
            "hits": sa.case((expired, new.excluded.hits), else_=rate_counters.c.hits + new.excluded.hits),
            "expires_at": sa.case((expired, new.excluded.expires_at), else_=rate_counters.c.expires_at),
        },
    ).returning(rate_counters.c.hits, rate_counters.c.expires_at)


_UPSERT = Statement(_upsert)
# Never below zero, and never in a window that has closed (its hits no longer count).
_RELEASE = Statement(
    rate_counters.update()
    .where(
        rate_counters.c.key == sa.bindparam("key"),
        rate_counters.c.expires_at > sa.bindparam("now"),
        rate_counters.c.hits > _ZERO,
    )
    .values(
        hits=sa.case(
            (rate_counters.c.hits > sa.bindparam("amount"), rate_counters.c.hits - sa.bindparam("amount")),
            else_=_ZERO,
        )
    )
)
_LIVE = Statement(
    sa.select(rate_counters.c.hits, rate_counters.c.expires_at).where(
        rate_counters.c.key == sa.bindparam("key"), rate_counters.c.expires_at > sa.bindparam("now")
    )
)
# Skipping locked rows, a sweep never waits on, or deadlocks with, another process counting or sweeping.
_SWEEP = Statement(
    lambda dialect: rate_counters.delete().where(
        rate_counters.c.key.in_(
            dialect.lock_skipping(
                sa.select(rate_counters.c.key).where(rate_counters.c.expires_at <= sa.bindparam("now"))
            ).scalar_subquery()
        )
    )
)
_CLEAR = Statement(rate_counters.delete().where(rate_counters.c.key == sa.bindparam("key")))
_RESET = Statement(rate_counters.delete())
_PING = Statement(sa.select(sa.literal(1).label("up")))


class DatabaseCounters(Counters):
    """Fixed-window counters in the `rate_counters` table, shared by every process on the database.

    Each call is one statement in autocommit on a detached connection (storage.driver.detached), as
    the hot reads are: a hit costs one round trip, not a BEGIN, a statement and a COMMIT.
    """

    def __init__(self, statements: DetachedStatements, clock: Clock) -> None:
        super().__init__()
        self._statements = statements
        self._clock = clock
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return sa.exc.SQLAlchemyError

    def _now(self) -> float:
        return self._clock().timestamp()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count `amount` hits; a window of `expiry` seconds opens at the first hit after the last closed."""
        return self.reserve(key, expiry, amount)[0]

    def reserve(self, key: str, expiry: int, amount: int) -> tuple[int, float]:
        """Count `amount` hits as `incr` does; returns the window's hits and when it closes (epoch seconds).

        Budgets (services.abuse) take their leases of requests this way.
        """
        now = self._now()
        values = {"key": key, "amount": amount, "expires_at": now + expiry, "now": now}
        row = self._statements.one(_UPSERT, values)
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            self.sweep()
        return int(row.hits), float(row.expires_at)

    def release(self, key: str, amount: int = 1) -> None:
        """Take back up to `amount` hits from the key's open window (none when no window is open)."""
        self._statements.count(_RELEASE, {"key": key, "amount": amount, "now": self._now()})

    def sweep(self) -> int:
        """Delete expired counters (each process does so once a minute); returns how many."""
        return self._statements.count(_SWEEP, {"now": self._now()})

    def _window(self, key: str) -> tuple[int, float] | None:
        row = self._statements.one(_LIVE, {"key": key, "now": self._now()})
        return (int(row.hits), float(row.expires_at)) if row is not None else None

    def get(self, key: str) -> int:
        """Hits in the key's open window (0 when none is open)."""
        window = self._window(key)
        return window[0] if window is not None else 0

    def get_expiry(self, key: str) -> float:
        """When the key's open window closes (now when none is open), in seconds since the epoch."""
        window = self._window(key)
        return window[1] if window is not None else self._now()

    def clear(self, key: str) -> None:
        """Forget one key's window."""
        self._statements.count(_CLEAR, {"key": key})

    def reset(self) -> int | None:
        """Forget every window; returns how many there were."""
        return self._statements.count(_RESET, {})

    def check(self) -> bool:
        """Whether the database answers."""
        try:
            self._statements.one(_PING, {})
        except sa.exc.SQLAlchemyError:
            return False
        return True
