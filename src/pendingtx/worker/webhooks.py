"""The webhook deliverer: a thread beside the job workers that fills the outbox from the event log and
sends what is due on a bounded pool of sender threads.

At most one delivery per endpoint is in flight in a process, an organization holds at most half of
the senders, and each delivery has the per-delivery timeout: one organization's slow endpoints
cannot take the senders that other organizations' deliveries need.
Deliveries are leased before sending: a process killed mid-send leaves the lease to run out, and
then any process sends the delivery again (at least once, never dropped).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from pendingtx.clock import Clock
from pendingtx.domain.webhooks import MAX_ENDPOINTS_PER_ORG
from pendingtx.services.webhook_delivery import Sender
from pendingtx.storage import webhooks as store
from pendingtx.storage.unit_of_work import UnitOfWork

log = logging.getLogger("pendingtx.webhooks")

# Endpoints turned to deliveries per pass, and events per endpoint per transaction.
_ENDPOINTS_PER_PASS = 100
_EVENTS_PER_DISPATCH = 500


class WebhookDeliverer:
    """Dispatches events into deliveries and sends them until stopped; start, request_stop, join."""

    def __init__(self, uow: UnitOfWork, sender: Sender, *, clock: Clock) -> None:
        self.uow = uow
        self.sender = sender
        self.clock = clock
        self.config = sender.config
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Endpoints with a delivery in flight here, and their organizations.
        self._busy: dict[int, int] = {}
        # Organizations with an enabled endpoint, read at each pass (None before the first).
        self._watched: frozenset[int] | None = None
        # No organization takes more than half the senders (its endpoints all slow, say).
        self._org_share = max(1, (self.config.concurrency + 1) // 2)
        self._lock = threading.Lock()
        self._senders = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="pendingtx-webhook")
        self._thread = threading.Thread(target=self._run, name="pendingtx-webhooks", daemon=True)

    def wake(self, recorded: Mapping[int, int] | None = None) -> None:
        """New events or a free sender: look again now (an event observer of the unit of work).

        Events of organizations without an enabled endpoint (as of the last pass) wake nothing: a
        pass per commit would cost every job two reads. An endpoint enabled since is seen by the
        next poll, as one registered in another process is.
        """
        watched = self._watched
        if recorded is not None and watched is not None and not any(org in watched for org in recorded):
            return
        self._wake.set()

    def start(self) -> None:
        """Start delivering in the background."""
        self._thread.start()

    def request_stop(self) -> None:
        """Stop dispatching and sending; returns at once (sends in flight finish, or their lease runs out)."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the loop to end; sends still in flight are left to finish."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        self._senders.shutdown(wait=False, cancel_futures=True)

    @property
    def alive(self) -> bool:
        """Whether the loop is still running."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            # Cleared before the pass: a wake-up during it makes the next pass come at once.
            self._wake.clear()
            more = False
            try:
                more = self.run_once()
            except Exception:
                log.exception("webhook deliverer step failed; retrying after the poll interval")
            if not more:
                self._wake.wait(self.config.poll_seconds)

    def run_once(self) -> bool:
        """One pass: dispatch new events, start due deliveries; True when there may be more right away."""
        dispatched = self.dispatch()
        started = self.start_due()
        return dispatched > 0 and started > 0

    def dispatch(self) -> int:
        """Turn endpoints' new events into deliveries; how many were made."""
        with self.uow.read() as conn:
            self._watched = store.watched_organizations(conn)
            lagging = store.behind(conn, limit=_ENDPOINTS_PER_PASS)
        made = 0
        for endpoint in lagging:
            with self.uow.write() as conn:
                made += store.dispatch(conn, endpoint, limit=_EVENTS_PER_DISPATCH, now=self.clock()) or 0
        return made

    def start_due(self) -> int:
        """Lease due deliveries for the free senders (one per endpoint) and hand them over; how many."""
        with self._lock:
            free = self.config.concurrency - len(self._busy)
            busy = dict(self._busy)
        if free <= 0:
            return 0
        now = self.clock()
        per_org = Counter(busy.values())
        full = sum(1 for count in per_org.values() if count >= self._org_share)
        # One per endpoint: enough for every free sender besides the endpoints that are skipped here
        # (busy, or of an organization that has its share), so that others are always in view.
        wanted = free + len(busy) + full * MAX_ENDPOINTS_PER_ORG
        with self.uow.read() as conn:
            due = store.candidates(conn, now=now, limit=wanted)
        started = 0
        for candidate in due:
            if started >= free or self._stop.is_set():
                break
            if candidate.webhook_id in busy or per_org[candidate.org_id] >= self._org_share:
                continue
            until = now + timedelta(seconds=self.config.lease_seconds)
            with self.uow.write() as conn:
                attempt = store.lease(conn, candidate.id, now=now, until=until)
            if attempt is None:
                continue  # another worker took it
            busy[candidate.webhook_id] = candidate.org_id
            per_org[candidate.org_id] += 1
            with self._lock:
                self._busy[candidate.webhook_id] = candidate.org_id
            self._senders.submit(self._send, candidate, attempt)
            started += 1
        return started

    def _send(self, candidate: store.Candidate, attempt: int) -> None:
        try:
            self.sender.send(candidate.id, attempt)
        except Exception:
            # The lease runs out and the delivery is tried again then.
            log.exception("webhook delivery %s attempt %d failed to run", candidate.id, attempt)
        finally:
            with self._lock:
                self._busy.pop(candidate.webhook_id, None)
            self._wake.set()
