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
PostgreSQL shares them: a hit is one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`. This module
is the only place where the two databases' upserts differ.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from typing import Any

import sqlalchemy as sa
from limits.storage import Storage
from sqlalchemy.dialects import postgresql, sqlite

from pendingtx.clock import Clock
from pendingtx.storage.driver.engine import WRITE_OPTION
from pendingtx.storage.prepared import Prepared
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


def _upsert(dialect: str) -> Any:
    """Count hits in one statement: a new, expired or emptied row starts a window, a live one adds to it."""
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":  # ON CONFLICT ... RETURNING needs SQLite 3.35 or newer
        insert = sqlite.insert
    else:
        raise ValueError(f"no rate-limit counters for the {dialect} dialect")
    new = insert(rate_counters).values(
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


# Never below zero, and never in a window that has closed (its hits no longer count).
_RELEASE = (
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
_LIVE = sa.select(rate_counters.c.hits, rate_counters.c.expires_at).where(
    rate_counters.c.key == sa.bindparam("key"), rate_counters.c.expires_at > sa.bindparam("now")
)
# SKIP LOCKED (PostgreSQL; SQLite has no row locks and ignores it): a sweep never waits on, or
# deadlocks with, another process counting or sweeping.
_SWEEP = rate_counters.delete().where(
    rate_counters.c.key.in_(
        sa.select(rate_counters.c.key)
        .where(rate_counters.c.expires_at <= sa.bindparam("now"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
)


class DatabaseCounters(Counters):
    """Fixed-window counters in the `rate_counters` table, shared by every process on the database.

    On PostgreSQL each call is one statement on a pooled connection in autocommit, run on the driver
    directly (as storage.prepared does for the hot reads): a hit costs the pool's liveness check and
    one round trip, not SQLAlchemy's BEGIN, statement and COMMIT. On SQLite, where the database
    counters serve only when asked for, each call is an ordinary SQLAlchemy transaction.
    """

    def __init__(self, engine: sa.Engine, clock: Clock) -> None:
        super().__init__()
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._direct = engine.dialect.name == "postgresql"
        self._clock = clock
        self._upsert = Prepared(_upsert(engine.dialect.name), engine.dialect)
        self._live = Prepared(_LIVE, engine.dialect)
        self._release = Prepared(_RELEASE, engine.dialect)
        self._sweep = Prepared(_SWEEP, engine.dialect)
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return sa.exc.SQLAlchemyError

    def _now(self) -> float:
        return self._clock().timestamp()

    def _run(self, statement: Prepared, values: dict[str, Any], *, write: bool) -> tuple[Any, int]:
        """The statement's first row (or None) and its row count."""
        if not self._direct:
            with (self._writer if write else self._engine).begin() as conn:
                result = conn.exec_driver_sql(statement.sql, statement.parameters(values))
                return (result.first() if result.returns_rows else None), result.rowcount
        error = self._engine.dialect.loaded_dbapi.Error
        try:
            pooled = self._engine.raw_connection()
        except error as exc:
            raise sa.exc.DBAPIError.instance(None, None, exc, error) from exc
        driver: Any = pooled.driver_connection
        try:
            driver.autocommit = True
            cursor = pooled.cursor()
            cursor.execute(statement.sql, statement.parameters(values))
            row = cursor.fetchone() if cursor.description is not None else None
            return row, cursor.rowcount
        except error as exc:
            pooled.invalidate()
            raise sa.exc.DBAPIError.instance(None, None, exc, error) from exc
        finally:
            if pooled.is_valid:
                driver.autocommit = False  # the pool hands out transactional connections
            pooled.close()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count `amount` hits; a window of `expiry` seconds opens at the first hit after the last closed."""
        return self.reserve(key, expiry, amount)[0]

    def reserve(self, key: str, expiry: int, amount: int) -> tuple[int, float]:
        """Count `amount` hits as `incr` does; returns the window's hits and when it closes (epoch seconds).

        Budgets (services.abuse) take their leases of requests this way.
        """
        now = self._now()
        values = {"key": key, "amount": amount, "expires_at": now + expiry, "now": now}
        row, _ = self._run(self._upsert, values, write=True)
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            self.sweep()
        return int(row[0]), float(row[1])

    def release(self, key: str, amount: int = 1) -> None:
        """Take back up to `amount` hits from the key's open window (none when no window is open)."""
        self._run(self._release, {"key": key, "amount": amount, "now": self._now()}, write=True)

    def sweep(self) -> int:
        """Delete expired counters (each process does so once a minute); returns how many."""
        return self._run(self._sweep, {"now": self._now()}, write=True)[1]

    def _window(self, key: str) -> tuple[int, float] | None:
        row, _ = self._run(self._live, {"key": key, "now": self._now()}, write=False)
        return (int(row[0]), float(row[1])) if row is not None else None

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
        with self._writer.begin() as conn:
            conn.execute(rate_counters.delete().where(rate_counters.c.key == key))

    def reset(self) -> int | None:
        """Forget every window; returns how many there were."""
        with self._writer.begin() as conn:
            return conn.execute(rate_counters.delete()).rowcount

    def check(self) -> bool:
        """Whether the database answers."""
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.select(1))
        except sa.exc.SQLAlchemyError:
            return False
        return True
