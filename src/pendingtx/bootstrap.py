"""The composition root: builds what the entrypoints run from typed settings; tests build their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from pendingtx.api.blocking import DatabaseCalls
from pendingtx.clock import Clock, utc_now
from pendingtx.config import Settings
from pendingtx.domain.credentials import TokenLifetimes
from pendingtx.services.abuse import AbuseLimits
from pendingtx.services.group_commit import GroupCommit
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.hot_reads import HotReads
from pendingtx.storage.migrate import upgrade
from pendingtx.storage.rate_counters import DatabaseCounters, MemoryCounters
from pendingtx.storage.server_keys import ServerKeys
from pendingtx.storage.unit_of_work import UnitOfWork
from pendingtx.worker.wakeup import Wakeup
from pendingtx.worker.worker import Worker, WorkerConfig


@dataclass
class Runtime:
    """Everything a process of the service shares: settings, database, clock and wake-up signal."""

    settings: Settings
    engine: sa.Engine
    clock: Clock = utc_now
    wakeup: Wakeup = field(default_factory=Wakeup)

    def __post_init__(self) -> None:
        self.uow = UnitOfWork(self.engine)
        self.reads = HotReads(self.engine)
        # Read from the database on first use, not here: building a runtime touches no table.
        self.keys = ServerKeys(self.uow, self.clock)
        self.lifetimes = TokenLifetimes(
            absolute=timedelta(seconds=self.settings.token_ttl_seconds),
            idle=timedelta(seconds=self.settings.token_idle_seconds),
        )
        self.trusted_proxies = self.settings.trusted_proxy_networks
        counters = (
            DatabaseCounters(self.engine, self.clock)
            if self.settings.rate_counters_in_database
            else MemoryCounters(self.clock)
        )
        self.abuse = AbuseLimits.from_settings(self.settings, counters, clock=self.clock)
        # On SQLite each commit is a flush to disk that one writer thread shares among submissions;
        # PostgreSQL flushes concurrent commits together by itself.
        self.acceptances = (
            GroupCommit(self.uow, clock=self.clock, notify=self.notify_workers)
            if self.settings.is_sqlite
            else None
        )

    def notify_workers(self) -> None:
        """Wake this process's workers: there may be new work (the wake-up may be replaced after start)."""
        self.wakeup.notify()

    def database_calls(self) -> DatabaseCalls:
        """How the API runs blocking database calls for this database (see api.blocking)."""
        s = self.settings
        return DatabaseCalls(
            in_threads=not s.is_sqlite, timeout=s.database_timeout_seconds, threads=s.database_pool_size
        )

    def new_worker(self, worker_id: str | None = None) -> Worker:
        """A worker over this runtime's database, configured from the settings."""
        s = self.settings
        config = WorkerConfig(
            lease_seconds=s.worker_lease_seconds,
            poll_seconds=s.worker_poll_seconds,
            chunk_size=s.worker_chunk_size,
            max_attempts=s.worker_max_attempts,
            patch_limits=s.patch_limits,
            fair_share_seconds=s.worker_fair_share_seconds,
        )
        return Worker(self.uow, config, clock=self.clock, worker_id=worker_id)

    def close(self) -> None:
        """Commit what is waiting and release the database connections."""
        if self.acceptances is not None:
            self.acceptances.close()
        self.reads.close()
        self.engine.dispose()


def build_runtime(settings: Settings, *, clock: Clock = utc_now, migrate: bool = True) -> Runtime:
    """Connect to the configured database and, unless told not to, bring its schema up to date."""
    engine = make_engine(settings)
    if migrate:
        upgrade(engine)
    return Runtime(settings=settings, engine=engine, clock=clock)
