"""What the HTTP layer is given by the composition root (bootstrap.py): the services it hands requests
to, each already chosen for the database. Nothing here is built by the API itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pendingtx.blocking import BlockingCalls
from pendingtx.clock import Clock
from pendingtx.config import Settings
from pendingtx.domain.credentials import TokenLifetimes
from pendingtx.domain.jobs import QueueSnapshot
from pendingtx.domain.networks import Network
from pendingtx.services.abuse import AbuseLimits
from pendingtx.services.authentication import Authenticator
from pendingtx.services.enqueue import Acceptor
from pendingtx.services.event_bus import EventBus
from pendingtx.services.job_status import StatusReader
from pendingtx.services.sandbox import Sandbox
from pendingtx.services.webhooks import WebhookService
from pendingtx.storage.server_keys import ServerKeys
from pendingtx.storage.unit_of_work import UnitOfWork


class Background(Protocol):
    """Work the server process runs beside the API (the embedded worker), started and stopped with it."""

    def start(self) -> None:
        """Start working."""

    def request_stop(self) -> None:
        """Stop taking new work; return at once (safe from a signal handler)."""

    def stop(self, timeout: float) -> bool:
        """Stop and wait up to `timeout` seconds; True when everything stopped."""


@dataclass(frozen=True)
class ApiServices:
    """Everything the routes use, made once per process."""

    settings: Settings
    uow: UnitOfWork
    clock: Clock
    # How blocking service calls are made from the event loop (inline on SQLite, threads otherwise).
    calls: BlockingCalls
    authenticator: Authenticator
    abuse: AbuseLimits
    status: StatusReader
    acceptor: Acceptor
    keys: ServerKeys
    # Raises when the database cannot be read (GET /readyz).
    ping: Callable[[], None]
    # The jobs as the database has them now (GET /metrics).
    queue_snapshot: Callable[[], QueueSnapshot]
    # Webhook endpoints, their delivery log and replays (contract 7.3).
    webhooks: WebhookService
    # The wake-up source of held status reads and event streams (services/event_bus.py).
    events: EventBus
    # Sandbox mode's clock and reset (contract 7.6); None on a production server.
    sandbox: Sandbox | None = None

    @property
    def lifetimes(self) -> TokenLifetimes:
        """Tokens' absolute and idle lifetimes."""
        return self.authenticator.lifetimes

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        """The proxies whose X-Forwarded-For names the client."""
        return self.settings.trusted_proxy_networks
