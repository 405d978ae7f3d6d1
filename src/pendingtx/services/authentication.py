"""Authenticating a /v1 request: the contract's rules 1 to 6, the application's budget, the idle clock.

The sequence is written once (`Authenticator.admit`): the rules are applied to the token as read,
and what may then block on the database (the budget's charge when no lease covers it, the token's
last-use stamp when it is due) comes back as steps. A blocking caller runs them in place; the
status GET on PostgreSQL, which reads on the event loop, hands them to threads.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain import credentials as cred
from pendingtx.domain.networks import Address, contains
from pendingtx.observability import identify
from pendingtx.services.abuse import Budget
from pendingtx.storage import apps as repo
from pendingtx.storage.hot_reads import HotReads
from pendingtx.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling a /v1 route: the application, and the organization every query is scoped to."""

    app_id: int
    app_key: str
    app_name: str
    org_id: int


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents: its Authorization and AppKey headers, and where it comes from.

    `address` is the caller's (api.client_address); None when unknown, which no allow-list admits.
    """

    authorization: str | None
    app_key: str | None
    address: Address | None

    def token_digest(self) -> str:
        """The digest of the bearer token, or AuthenticationFailed for a missing or malformed header."""
        return cred.token_digest(bearer_token(self.authorization))


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted caller, and the steps left that may block (run each before answering)."""

    caller: Caller
    pending: tuple[Callable[[], None], ...]


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header, or AuthenticationFailed."""
    if authorization is None:
        raise errors.AuthenticationFailed("Missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise errors.AuthenticationFailed("Malformed Authorization header; expected Bearer token")
    return token


def check_rules(
    found: repo.TokenRecord | None, credentials: Credentials, *, lifetimes: cred.TokenLifetimes, now: datetime
) -> Caller:
    """The contract's authentication rules 1 to 6, in order, applied to the token as read."""
    if found is None or found.revoked:
        raise errors.AuthenticationFailed()
    if lifetimes.expired(expires_at=found.expires_at, last_used_at=found.last_used_at, now=now):
        raise errors.TokenExpired()
    app_key = credentials.app_key
    if not app_key or not hmac.compare_digest(app_key.encode(), found.app_key.encode()):
        raise errors.AuthenticationFailed("Invalid ApiKey")
    identify(found.app_key, found.org_id)  # names the caller in this request's log line
    if found.app_disabled:
        raise errors.AuthenticationFailed("Application is disabled")
    if not found.entitled:
        raise errors.NotEntitled()
    if found.allowed_networks is not None and not contains(found.allowed_networks, credentials.address):
        shown = credentials.address if credentials.address is not None else "unknown"
        raise errors.AccessDenied(f"Caller address {shown} is not on the application's allow-list")
    return Caller(found.app_id, found.app_key, found.app_name, found.org_id)


class Authenticator:
    """Admits /v1 callers; made once per process by the composition root."""

    def __init__(
        self, uow: UnitOfWork, reads: HotReads, *, lifetimes: cred.TokenLifetimes, clock: Clock
    ) -> None:
        self.uow = uow
        self.reads = reads
        self.lifetimes = lifetimes
        self.clock = clock

    def admit(self, found: repo.TokenRecord | None, credentials: Credentials, budget: Budget) -> Admission:
        """Apply the rules to the token as read, and say what is left to do for the budget and idle clock.

        A request is counted against `budget` once its caller is admitted, before anything else is
        checked: a caller cannot probe beyond its budget.
        """
        now = self.clock()
        caller = check_rules(found, credentials, lifetimes=self.lifetimes, now=now)
        assert found is not None
        pending: list[Callable[[], None]] = []
        if not budget.spend_leased(caller.app_id):
            pending.append(partial(budget.charge, caller.app_id))
        if self.lifetimes.needs_touch(last_used_at=found.last_used_at, now=now):
            pending.append(partial(self._touch, found.id, now, credentials.token_digest()))
        return Admission(caller, tuple(pending))

    def admit_kept(
        self, found: repo.TokenRecord | None, credentials: Credentials, budget: Budget
    ) -> Admission:
        """As `admit`, for a token that may have been kept in memory: before an expired token is
        refused, it is read afresh, as another process may have used it since (its idle clock)."""
        try:
            return self.admit(found, credentials, budget)
        except errors.TokenExpired:
            if not self.reads.keeps:
                raise
            fresh = self.reads.token(credentials.token_digest(), fresh=True)
            return self.admit(fresh, credentials, budget)

    def authenticate(self, credentials: Credentials, budget: Budget) -> Caller:
        """Read the token (or take it as kept), admit its caller and run what is left (blocking)."""
        admission = self.admit_kept(self.reads.token(credentials.token_digest()), credentials, budget)
        for step in admission.pending:
            step()
        return admission.caller

    def _touch(self, token_id: int, now: datetime, digest: str) -> None:
        """Keep the idle clock honest, writing at most once per touch interval (per process)."""
        with self.uow.write() as conn:
            repo.touch_token(conn, token_id, now=now)
        self.reads.touched(digest, now)
