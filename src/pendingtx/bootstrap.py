"""The composition root: builds a process of the service from typed settings.

Every decision that depends on the database is made here, once: how blocking calls run, how jobs
are accepted, how status reads are made, where rate counters live, whether other processes' jobs
need listening for. Only the entrypoints (cli.py, demo.py) and the tests import this module; no
package below it imports it back (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import sqlalchemy as sa
from starlette.types import ASGIApp

from pendingtx.api.app import DEFAULT_SHUTDOWN_TIMEOUT, create_app
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.server import run_server
from pendingtx.api.status import render
from pendingtx.blocking import BlockingCalls, InlineCalls, ThreadCalls
from pendingtx.clock import Clock, SandboxClock, utc_now
from pendingtx.config import Settings
from pendingtx.domain.credentials import TokenLifetimes
from pendingtx.domain.jobs import QueueSnapshot
from pendingtx.domain.webhooks import parse_schedule, webhook_key_bytes
from pendingtx.observability.logs import AccessLog, fields
from pendingtx.services import job_status, retention
from pendingtx.services.abuse import AbuseLimits
from pendingtx.services.authentication import Authenticator
from pendingtx.services.enqueue import Acceptor, DirectAcceptor
from pendingtx.services.event_bus import EventBus, EventLimits
from pendingtx.services.group_commit import GroupCommit
from pendingtx.services.sandbox import Sandbox
from pendingtx.services.sandbox_triggers import Triggers
from pendingtx.services.webhook_delivery import DeliveryConfig, Sender, new_http_client
from pendingtx.services.webhook_secrets import WebhookSecrets
from pendingtx.services.webhooks import WebhookService
from pendingtx.siblings import Place, Receiver, Siblings
from pendingtx.storage import claim
from pendingtx.storage import sandbox as sandbox_marker
from pendingtx.storage.driver import Statement, run
from pendingtx.storage.driver.detached import AwaitedStatements, DetachedStatements
from pendingtx.storage.driver.engine import libpq_conninfo, make_engine
from pendingtx.storage.driver.notifications import DataVersion, Listener
from pendingtx.storage.events import CHANNEL as EVENTS_CHANNEL
from pendingtx.storage.hot_reads import HotReads
from pendingtx.storage.migrate import upgrade
from pendingtx.storage.rate_counters import Counters, DatabaseCounters, MemoryCounters
from pendingtx.storage.server_keys import ServerKeys
from pendingtx.storage.unit_of_work import UnitOfWork
from pendingtx.worker.clock_follower import ClockFollower
from pendingtx.worker.listener import JobListener
from pendingtx.worker.pool import Companion, WorkerPool
from pendingtx.worker.sweeper import Sweeper
from pendingtx.worker.wakeup import Wakeup
from pendingtx.worker.webhooks import WebhookDeliverer
from pendingtx.worker.worker import Worker, WorkerConfig

_PING = Statement(sa.select(sa.literal(1).label("up")))
log = logging.getLogger("pendingtx")


@dataclass
class Runtime:
    """Everything one process of the service shares: settings, database, clock, wake-up signal, and
    the services made for this database."""

    settings: Settings
    engine: sa.Engine
    clock: Clock = utc_now
    wakeup: Wakeup = field(default_factory=Wakeup)
    # Where this process stands among those of one `serve --processes N` (None: alone).
    place: Place | None = None

    def __post_init__(self) -> None:
        s = self.settings
        self.uow = UnitOfWork(self.engine)
        # The embedded SQLite file: local reads cheaper than a thread hop, one writer at a time.
        embedded = self.uow.rules.embedded
        # Sibling processes on SQLite hear of each other's commits through datagrams (PostgreSQL: NOTIFY).
        self.siblings = Siblings(self.place) if embedded and self.place and self.place.count > 1 else None
        self.calls: BlockingCalls = (
            InlineCalls()
            if embedded
            else ThreadCalls(timeout=s.database_timeout_seconds, threads=s.database_pool_size)
        )
        # As many idle reading connections as the pool holds: as many as read at once.
        self.detached = DetachedStatements(self.engine, max_idle=s.database_pool_size)
        awaited = None if embedded else AwaitedStatements(self.engine, size=s.database_pool_size)
        self.reads = HotReads(self.detached, awaited)
        # Read from the database on first use, not here: building a runtime touches no table.
        self.keys = ServerKeys(self.uow, self.clock)
        self.webhook_secrets = WebhookSecrets(
            self.uow, self.clock, webhook_key_bytes(s.webhook_key) if s.webhook_key else None
        )
        self.lifetimes = TokenLifetimes(
            absolute=timedelta(seconds=s.token_ttl_seconds), idle=timedelta(seconds=s.token_idle_seconds)
        )
        self.finished_answers = job_status.FinishedAnswerCache()
        # This process's retention sweeps, woken when a sandbox's clock moves.
        self.sweepers: list[Sweeper] = []
        self.authenticator = Authenticator(self.uow, self.reads, lifetimes=self.lifetimes, clock=self.clock)
        self.abuse = AbuseLimits.from_settings(s, self._counters(embedded), clock=self.clock)
        # On SQLite each commit is a flush to disk that one writer thread shares among submissions;
        # PostgreSQL flushes concurrent commits together by itself.
        seed = s.sandbox_seed if s.sandbox and s.sandbox_seed else None
        self.acceptor: Acceptor = (
            GroupCommit(self.uow, clock=self.clock, notify=self.notify_workers, key_seed=seed)
            if embedded
            else DirectAcceptor(
                self.uow, self.calls, clock=self.clock, notify=self.notify_workers, key_seed=seed
            )
        )
        self.events = self._event_bus(embedded)

    def _event_bus(self, embedded: bool) -> EventBus:
        # This process's commits tell the bus directly; other processes' through NOTIFY (PostgreSQL)
        # or the database's data version, checked only while something waits (SQLite).
        s = self.settings
        limits = EventLimits(
            max_waiting=s.max_waiting_per_organization,
            max_streams=s.max_event_streams_per_organization,
            retry_after_seconds=s.status_retry_after_seconds,
        )
        if embedded:
            self.data_version: DataVersion | None = DataVersion(self.engine)
            siblings = self.siblings
            feed = None if siblings is None else partial(_sibling_feed, siblings, self._wake_here)
            bus = EventBus(
                self.uow,
                self.calls,
                limits,
                changed=self.data_version.changed,
                check_seconds=s.event_check_seconds,
                feed=feed,
            )
            if siblings is not None:
                self.uow.event_observers.append(siblings.events_recorded)
        else:
            self.data_version = None
            conninfo = libpq_conninfo(s.database_url)

            def listener(bus: EventBus) -> Listener:
                return Listener(
                    conninfo,
                    EVENTS_CHANNEL,
                    bus.announced,
                    bus.missed,
                    retry_seconds=s.worker_poll_seconds,
                    late=True,
                )

            bus = EventBus(self.uow, self.calls, limits, feed=listener, feed_when_held=True)
        self.uow.event_observers.append(bus.observe)
        return bus

    def _counters(self, embedded: bool) -> Counters:
        # "auto": in memory for the one process of an embedded database, else shared by every process
        # (sibling processes on SQLite too: each would otherwise grant the whole budget).
        where = self.settings.rate_limit_storage
        alone = self.place is None or self.place.count == 1
        if where == "database" or (where == "auto" and not (embedded and alone)):
            return DatabaseCounters(self.detached, self.clock)
        return MemoryCounters(self.clock)

    def _wake_here(self) -> None:
        self.wakeup.notify()

    def notify_workers(self) -> None:
        """Wake this process's workers, or the sibling's that runs them: there may be new work (the
        wake-up may be replaced after start)."""
        self.wakeup.notify()
        if self.siblings is not None:
            self.siblings.jobs_accepted()

    def status_reader(self) -> job_status.StatusReader:
        """How status GETs are answered on this database."""
        service = job_status.StatusService(
            authenticator=self.authenticator,
            budget=self.abuse.status_reads,
            render=render,
            answers=self.finished_answers,
            max_problems=self.settings.status_max_problems,
        )
        if self.uow.rules.embedded:
            return job_status.BlockingStatusReader(service, self.calls)
        # The read is awaited on the event loop: no thread hop on the hot path.
        return job_status.AwaitedStatusReader(service, self.calls)

    def ping(self) -> None:
        """Read from the database (the readiness probe)."""
        with self.uow.read() as conn:
            run(conn, _PING)

    def queue_snapshot(self) -> QueueSnapshot:
        """The jobs as the database has them now."""
        with self.uow.read() as conn:
            return claim.queue_snapshot(conn, now=self.clock())

    def api_services(self) -> ApiServices:
        """What the HTTP layer is given."""
        return ApiServices(
            settings=self.settings,
            uow=self.uow,
            clock=self.clock,
            calls=self.calls,
            authenticator=self.authenticator,
            abuse=self.abuse,
            status=self.status_reader(),
            acceptor=self.acceptor,
            keys=self.keys,
            ping=self.ping,
            queue_snapshot=self.queue_snapshot,
            webhooks=WebhookService(
                uow=self.uow,
                clock=self.clock,
                secrets=self.webhook_secrets,
                keys=self.keys,
                allow_private=self.settings.webhook_allow_private,
            ),
            events=self.events,
            sandbox=self.sandbox(),
        )

    def sandbox(self) -> Sandbox | None:
        """Sandbox mode's controls, or None on a production server (or a clock that cannot move)."""
        if not self.settings.sandbox or not isinstance(self.clock, SandboxClock):
            return None
        return Sandbox(
            self.uow, self.clock, on_reset=self.finished_answers.forget, on_advance=self._wake_sweepers
        )

    def _wake_sweepers(self) -> None:
        for sweeper in self.sweepers:
            sweeper.wake()

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
            # Half a lease at most asleep per chunk: the job is never taken over for its triggers.
            triggers=Triggers(max_sleep_seconds=s.worker_lease_seconds / 2) if s.sandbox else None,
        )
        return Worker(self.uow, config, clock=self.clock, worker_id=worker_id)

    def worker_pool(self, concurrency: int = 1) -> WorkerPool:
        """This process's workers, and a listener for the jobs other processes commit (PostgreSQL)."""
        listener = None
        if not self.uow.rules.embedded:
            listener = JobListener(
                libpq_conninfo(self.settings.database_url),
                self.wakeup,
                retry_seconds=self.settings.worker_poll_seconds,
            )
        workers = [self.new_worker() for _ in range(concurrency)]
        companions: list[Companion] = [self.webhook_deliverer()]
        sandbox = self.sandbox()
        if sandbox is not None:
            # Other processes of the sandbox may move its clock: this one follows within a poll.
            companions.append(ClockFollower(sandbox.catch_up, interval=self.settings.worker_poll_seconds))
        return WorkerPool(workers, self.wakeup, listener, companions=companions, sweeper=self.sweeper())

    def webhook_deliverer(self) -> WebhookDeliverer:
        """The thread that sends this process's share of webhook deliveries, woken by new events."""
        s = self.settings
        config = DeliveryConfig(
            timeout_seconds=s.webhook_timeout_seconds,
            lease_seconds=s.webhook_lease_seconds,
            schedule=parse_schedule(s.webhook_retry_schedule),
            disable_after_seconds=s.webhook_disable_after_seconds,
            allow_private=s.webhook_allow_private,
            concurrency=s.webhook_concurrency,
            poll_seconds=s.webhook_poll_seconds,
        )
        sender = Sender(
            self.uow, self.webhook_secrets, config, clock=self.clock, http=new_http_client(config)
        )
        deliverer = WebhookDeliverer(self.uow, sender, clock=self.clock)
        self.uow.event_observers.append(deliverer.wake)
        return deliverer

    def sweeper(self) -> Sweeper:
        """The retention sweep, run by each workers' process every `retention_sweep_seconds`."""
        period = timedelta(days=self.settings.job_retention_days)
        sweeper = Sweeper(
            partial(retention.sweep, self.uow, retention_period=period, clock=self.clock),
            interval=self.settings.retention_sweep_seconds,
        )
        self.sweepers.append(sweeper)
        return sweeper

    def close(self) -> None:
        """Commit what is waiting and release the database connections."""
        self.acceptor.close()
        self.events.close()
        if self.data_version is not None:
            self.data_version.close()
        self.reads.close()
        if self.siblings is not None:
            self.siblings.close()
        self.engine.dispose()


def _sibling_feed(siblings: Siblings, wake: Callable[[], None], bus: EventBus) -> Receiver:
    return siblings.receiver(wake, bus.announced)


def build_runtime(
    settings: Settings, *, clock: Clock = utc_now, migrate: bool = True, place: Place | None = None
) -> Runtime:
    """Connect to the configured database and, unless told not to, bring its schema up to date;
    `place`: this process is one of several serving together."""
    engine = make_engine(settings)
    if migrate:
        upgrade(engine)
    try:
        clock = _checked_clock(settings, UnitOfWork(engine), clock)
    except Exception:
        engine.dispose()
        raise
    return Runtime(settings=settings, engine=engine, clock=clock, place=place)


def _checked_clock(settings: Settings, uow: UnitOfWork, clock: Clock) -> Clock:
    """Refuse a database of the other mode (storage.sandbox.DatabaseRefused); a sandbox's clock
    resumes from the offset its database keeps."""
    sandbox_marker.check_mode(uow, sandbox=settings.sandbox, now=clock())
    if not settings.sandbox:
        return clock
    return SandboxClock(clock, sandbox_marker.clock_offset(uow))


SANDBOX_BANNER = (
    "SANDBOX MODE: a test server for client developers (contract 7.6): Prefer: code=/delay= honoured, "
    "trigger values active, /sandbox/clock and /sandbox/reset served; never use it for real data"
)


def build_app(
    runtime: Runtime,
    *,
    workers: WorkerPool | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    access_log: AccessLog | None = None,
) -> ASGIApp:
    """The ASGI application over this runtime, running `workers` beside it when given."""
    return create_app(
        runtime.api_services(), background=workers, shutdown_timeout=shutdown_timeout, access_log=access_log
    )


def serve(
    runtime: Runtime, *, host: str, port: int, run_worker: bool = True, access_log: AccessLog | None = None
) -> None:
    """Serve the API (and, with `run_worker`, the embedded worker) until SIGTERM or SIGINT.

    On the signal the workers stop claiming at once and hand back a job in progress at its next
    chunk boundary; the server finishes the requests in flight; then this returns. One of several
    processes (`runtime.place`) shares the port with its siblings (SO_REUSEPORT).
    """
    timeout = runtime.settings.shutdown_timeout_seconds
    if runtime.settings.sandbox:
        log.warning(SANDBOX_BANNER)
    place = runtime.place
    workers = runtime.worker_pool() if run_worker and (place is None or place.runs_worker) else None
    if place is not None:
        log.info(
            "process %d of %d serving%s",
            place.index + 1,
            place.count,
            " with the worker" if workers is not None else "",
            extra=fields(
                event="process.serving", index=place.index, pid=os.getpid(), worker=workers is not None
            ),
        )
    app = build_app(runtime, workers=workers, shutdown_timeout=timeout, access_log=access_log)
    run_server(
        app,
        host=host,
        port=port,
        log_level=runtime.settings.log_level.lower(),
        shutdown_timeout=timeout,
        on_stop_signal=lambda: _stop_signalled(runtime, workers),
        reuse_port=place is not None,
        http_server=runtime.settings.http_server,
    )


def _stop_signalled(runtime: Runtime, workers: WorkerPool | None) -> None:
    # Held status reads and open streams are answered now, not after the graceful-shutdown timeout.
    runtime.events.close()
    if workers is not None:
        workers.request_stop()
