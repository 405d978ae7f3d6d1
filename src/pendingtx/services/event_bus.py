"""The process's one wake-up source for held status reads (long-poll) and event streams.

News that an organization's log grew comes from this process's commits (`UnitOfWork.event_observers`,
on any thread), from other processes through PostgreSQL's NOTIFY (listened to from the first held
request on), or on SQLite from a check of the database's data version made once per interval, and
only while something waits. Held requests cost
memory only: no thread, no timer of their own, and no query each. When an organization with held
status reads has news, ONE query (its `job.completed` events after the last sequence seen) tells which
of their jobs finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Protocol

from pendingtx import errors
from pendingtx.blocking import BlockingCalls
from pendingtx.domain.events import EventType
from pendingtx.storage import events
from pendingtx.storage.unit_of_work import UnitOfWork

log = logging.getLogger("pendingtx.events")

# Completions read per query; a full page is followed by another at once.
COMPLETIONS_PER_READ = 500


@dataclass(frozen=True, slots=True)
class EventLimits:
    """How many held status reads and open streams one organization may have in this process."""

    max_waiting: int
    max_streams: int
    # The hint sent with a 429 for either.
    retry_after_seconds: int = 1


class _Org:
    """One organization's held status reads (by job key) and open streams."""

    __slots__ = ("busy", "cursor", "dirty", "known", "parked", "ready", "streams", "waiters", "waiting")

    def __init__(self) -> None:
        self.waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.waiting = 0
        self.parked = 0  # of those, the ones waiting now (their job read, not yet answered)
        self.streams: set[asyncio.Event] = set()
        # Every job.completed at or before `cursor` has been handed to the waiters there were then.
        self.cursor = 0
        self.ready: asyncio.Future[None] | None = None
        self.known = 0  # the highest sequence announced
        self.dirty = False
        self.busy = False

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.streams


class JobWatch:
    """A registered status read: waits until its job may have finished, time passes or shutdown."""

    __slots__ = ("_future", "_state")

    def __init__(self, state: _Org, future: asyncio.Future[None]) -> None:
        self._state = state
        self._future = future

    async def wait(self, seconds: float) -> None:
        """Return when the job completed (it may have), after `seconds`, or at shutdown."""
        if self._future.done():
            return
        self._state.parked += 1
        try:
            async with asyncio.timeout(seconds):
                await asyncio.shield(self._future)
        except TimeoutError:
            pass
        finally:
            self._state.parked -= 1


class Subscription:
    """An open stream's view of its organization's news."""

    __slots__ = ("_bus", "_news", "_org_id", "_released")

    def __init__(self, bus: EventBus, org_id: int, news: asyncio.Event) -> None:
        self._bus = bus
        self._org_id = org_id
        self._news = news
        self._released = False

    @property
    def closed(self) -> bool:
        """Whether the process is shutting down (the stream should end)."""
        return self._bus.closed

    def take(self) -> None:
        """Forget the news seen so far: call it just before reading the log."""
        self._news.clear()

    async def news(self) -> None:
        """Return when the organization's log may have grown since `take`, or at shutdown."""
        await self._news.wait()

    def release(self) -> None:
        """Close the subscription (idempotent)."""
        if not self._released:
            self._released = True
            self._bus._unsubscribe(self._org_id, self._news)


class Feed(Protocol):
    """A source of news from other processes that runs beside the API (a LISTEN connection)."""

    def start(self) -> None:
        """Start feeding."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop feeding; blocks up to `timeout` seconds."""


class EventBus:
    """One per process: built by the composition root, started and closed with the API."""

    def __init__(
        self,
        uow: UnitOfWork,
        calls: BlockingCalls,
        limits: EventLimits,
        *,
        changed: Callable[[], bool] | None = None,
        check_seconds: float = 0.5,
        feed: Callable[[EventBus], Feed] | None = None,
        feed_when_held: bool = False,
    ) -> None:
        self.uow = uow
        self.calls = calls
        self.limits = limits
        # SQLite: whether another connection committed since the last look (None: news arrive by
        # themselves, from this process's commits and PostgreSQL's NOTIFY).
        self._changed = changed
        self._check_seconds = check_seconds
        # Made anew at each start: PostgreSQL's NOTIFY from other processes, or a sibling's news.
        self._make_feed = feed
        # Start the feed only when a status read is first held or a stream first opened: a process
        # that never holds one (most) then costs PostgreSQL no listening backend woken per commit.
        # Such a feed must call `missed` once it listens, since commits before went unannounced.
        self._feed_when_held = feed_when_held
        self._feed: Feed | None = None
        self._orgs: dict[int, _Org] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        # How many catch-up reads were made (tests count them).
        self.reads = 0

    # --- life -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start on the running event loop (the API's lifespan)."""
        self._loop = asyncio.get_running_loop()
        self.closed = False
        if not self._feed_when_held:
            self._start_feed()

    def _start_feed(self) -> None:
        if self._make_feed is not None and self._feed is None:
            self._feed = self._make_feed(self)
            self._feed.start()

    def stop_feed(self) -> None:
        """Stop the feed from other processes (blocks up to a few seconds: call it off the event loop)."""
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.stop()

    def close(self) -> None:
        """Answer every held status read and end every stream now; later ones are not held.

        Safe from any thread.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            self.closed = True
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._close()
        else:
            try:
                loop.call_soon_threadsafe(self._close)
            except RuntimeError:  # the loop closed meanwhile
                self.closed = True

    def _close(self) -> None:
        self.closed = True
        for state in self._orgs.values():
            for futures in state.waiters.values():
                for future in futures:
                    if not future.done():
                        future.set_result(None)
            for news in state.streams:
                news.set()
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    # --- news -------------------------------------------------------------------------------------

    def observe(self, recorded: Mapping[int, int]) -> None:
        """Observes `UnitOfWork.event_observers`: each organization's last sequence, from any thread."""
        loop = self._loop
        if loop is None or self.closed:
            return
        # Most commits concern organizations nobody here waits on, and waking the event loop for
        # each is a cost every submission paid. Skipping is safe: a read or stream registers its
        # organization before it first reads the log, which then holds this commit.
        orgs = self._orgs
        if not any(org_id in orgs for org_id in recorded):
            return
        with suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(self.announce, dict(recorded))

    def announced(self, payload: str) -> None:
        """A NOTIFY payload `<org id>:<sequence>` from any thread."""
        org, _, sequence = payload.partition(":")
        if org.isdigit() and sequence.isdigit():
            self.observe({int(org): int(sequence)})

    def missed(self) -> None:
        """News may have been lost (a listener reconnected): every organization looks again."""
        loop = self._loop
        if loop is not None and not self.closed:
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake_all)

    def announce(self, recorded: Mapping[int, int]) -> None:
        """On the event loop: these organizations' logs reached these sequences."""
        for org_id, sequence in recorded.items():
            state = self._orgs.get(org_id)
            if state is not None:
                self._wake(org_id, state, sequence)

    def _wake_all(self) -> None:
        for org_id, state in list(self._orgs.items()):
            self._wake(org_id, state, None)

    def _wake(self, org_id: int, state: _Org, sequence: int | None) -> None:
        for news in state.streams:
            news.set()
        if not state.waiting:
            return
        if sequence is not None:
            # Already read or being read (this process's commit announced, then its NOTIFY).
            if sequence <= state.known or (
                state.ready is not None and state.ready.done() and sequence <= state.cursor
            ):
                return
            state.known = sequence
        state.dirty = True
        if not state.busy:
            state.busy = True
            self._spawn(self._catch_up(org_id, state))

    def _spawn(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up(self, org_id: int, state: _Org) -> None:
        """Hand each job.completed after the cursor to its waiters: one read per round of news."""
        try:
            while state.dirty and state.waiting and not self.closed:
                state.dirty = False
                if state.ready is None:  # the first waiter's read of the cursor failed
                    return
                await asyncio.shield(state.ready)
                known = state.known
                self.reads += 1
                found = await self.calls(completions, self.uow, org_id, state.cursor, COMPLETIONS_PER_READ)
                for _, key in found:
                    for future in state.waiters.get(key, ()):
                        if not future.done():
                            future.set_result(None)
                state.cursor = max(state.cursor, known, *(sequence for sequence, _ in found))
                if len(found) == COMPLETIONS_PER_READ:
                    state.dirty = True
        except Exception:
            # Unreadable now: every waiter of the organization reads its status again instead.
            log.warning("events: could not read organization %s's completions", org_id, exc_info=True)
            for futures in state.waiters.values():
                for future in futures:
                    if not future.done():
                        future.set_result(None)
        finally:
            state.busy = False

    # --- other processes -----------------------------------------------------------------------------

    def _watch_other_processes(self) -> None:
        if self.closed:
            return
        if self._feed_when_held:
            self._start_feed()
        if self._changed is not None and self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._check_loop())

    async def _check_loop(self) -> None:
        changed = self._changed
        assert changed is not None
        try:
            while self._orgs and not self.closed:
                # The first look counts as news: a commit between a waiter's reads and this look
                # would otherwise be the version compared with, and never noticed.
                if await self.calls(changed):
                    self._wake_all()
                await asyncio.sleep(self._check_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("events: could not check for other processes' commits", exc_info=True)
        finally:
            if self._watcher is asyncio.current_task():
                self._watcher = None

    # --- held status reads ------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(self, org_id: int, key: str) -> AsyncIterator[JobWatch]:
        """Register a status read of `key` before it reads the job again (so no completion in between
        is missed); 429 when the organization holds too many."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self.closed:
            future.set_result(None)
            yield JobWatch(_Org(), future)
            return
        state = self._orgs.get(org_id)
        if state is not None and state.waiting >= self.limits.max_waiting:
            raise _too_many("status reads with wait", self.limits)
        if state is None:
            state = self._orgs[org_id] = _Org()
        state.waiters.setdefault(key, []).append(future)
        state.waiting += 1
        self._watch_other_processes()
        try:
            await self._cursor_ready(org_id, state)
            yield JobWatch(state, future)
        finally:
            future.cancel()
            futures = state.waiters.get(key)
            if futures is not None:
                futures.remove(future)
                if not futures:
                    del state.waiters[key]
            state.waiting -= 1
            self._forget_if_idle(org_id, state)

    async def _cursor_ready(self, org_id: int, state: _Org) -> None:
        # The first waiter reads where the log stands, after registering and before its status read:
        # a completion committed later has a higher sequence (events commit in sequence order).
        if state.ready is None:
            state.ready = asyncio.get_running_loop().create_future()
            try:
                state.cursor = max(state.cursor, await self.calls(last_sequence, self.uow, org_id))
            except BaseException as exc:
                ready, state.ready = state.ready, None
                ready.set_exception(exc)
                ready.exception()  # retrieved: the waiters that share it re-raise it themselves
                raise
            state.ready.set_result(None)
        await asyncio.shield(state.ready)

    def _forget_if_idle(self, org_id: int, state: _Org) -> None:
        if state.idle and self._orgs.get(org_id) is state:
            del self._orgs[org_id]

    # --- streams ----------------------------------------------------------------------------------

    def subscribe(self, org_id: int) -> Subscription:
        """Open a stream's subscription to the organization's news; 429 when it has too many streams."""
        state = self._orgs.get(org_id)
        if state is not None and len(state.streams) >= self.limits.max_streams:
            raise _too_many("event streams", self.limits)
        if state is None:
            state = self._orgs[org_id] = _Org()
        news = asyncio.Event()
        if self.closed:
            news.set()
        state.streams.add(news)
        self._watch_other_processes()
        return Subscription(self, org_id, news)

    def _unsubscribe(self, org_id: int, news: asyncio.Event) -> None:
        state = self._orgs.get(org_id)
        if state is not None:
            state.streams.discard(news)
            self._forget_if_idle(org_id, state)

    def held(self, org_id: int) -> tuple[int, int]:
        """How many status reads the organization has waiting here now, and how many streams open."""
        state = self._orgs.get(org_id)
        return (state.parked, len(state.streams)) if state is not None else (0, 0)


def _too_many(what: str, limits: EventLimits) -> errors.RateLimited:
    return errors.RateLimited(
        f"Too many open {what} for this organization; retry later",
        headers={"Retry-After": str(limits.retry_after_seconds)},
    )


def completions(uow: UnitOfWork, org_id: int, after: int, limit: int) -> list[tuple[int, str]]:
    """(sequence, job key) of the organization's job.completed events after `after`, oldest first."""
    with uow.read() as conn:
        found = events.page(conn, org_id, after=after, limit=limit, kind=EventType.COMPLETED)
    return [(event.sequence, event.job_key) for event in found]


def last_sequence(uow: UnitOfWork, org_id: int) -> int:
    """The organization's last event sequence."""
    with uow.read() as conn:
        return events.last_sequence(conn, org_id)
