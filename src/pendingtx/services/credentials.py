"""Registering applications, authenticating them by their secrets, minting and revoking their tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pendingtx import errors
from pendingtx.clock import Clock
from pendingtx.domain import credentials as cred
from pendingtx.domain.networks import Network
from pendingtx.observability import identify
from pendingtx.services.abuse import SecretChecks
from pendingtx.storage import apps as repo
from pendingtx.storage.unit_of_work import UnitOfWork

# An application as registered, with its organization and entitlements.
Application = repo.AppRecord


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _decoy_hash() -> str:
    # Verifying against this for unknown keys keeps the answer time independent of key existence.
    return _hasher().hash(cred.new_app_secret())


@dataclass(frozen=True, slots=True)
class NewApp:
    """A registered application, with the only copy of its secret."""

    app_key: str
    app_secret: str
    name: str
    organization: str
    products: tuple[str, ...]
    allowed_networks: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A new access token: its value is never stored, only returned here."""

    access_token: str
    expires_in: int
    issued_at: datetime
    application_name: str


def create_app(
    uow: UnitOfWork,
    *,
    name: str,
    organization: str,
    products: Sequence[str],
    clock: Clock,
    allowed_networks: Sequence[Network] = (),
) -> NewApp:
    """Register an application in an organization (created on first use), with an optional IP allow-list."""
    app_key, secret = cred.new_app_key(), cred.new_app_secret()
    secret_hash = _hasher().hash(secret)
    now = clock()
    with uow.write() as conn:
        org_id = repo.ensure_organization(conn, organization, now=now)
        repo.insert_app(
            conn,
            org_id=org_id,
            name=name,
            app_key=app_key,
            secret_hash=secret_hash,
            products=products,
            now=now,
            allowed_networks=allowed_networks,
        )
    return NewApp(app_key, secret, name, organization, tuple(sorted(set(products))), tuple(allowed_networks))


def authenticate_client(
    uow: UnitOfWork, checks: SecretChecks, *, app_key: str, app_secret: str, deadline: float | None = None
) -> repo.AppRecord:
    """The enabled application these client credentials belong to, or InvalidClient.

    The secret is checked in one of `checks`' slots, or ServiceUnavailable when none is free by
    `deadline` (`time.monotonic()`; by default the checks' wait from now).
    """
    if "\x00" in app_key:
        # No AppKey holds one, and PostgreSQL cannot even compare text holding one.
        raise errors.InvalidClient()
    with uow.read() as conn:
        app = repo.find_app(conn, app_key)
    try:
        # The decoy is hashed once, at the first unknown key: with as much memory as a check.
        with checks.slot(checks.deadline() if deadline is None else deadline):
            _hasher().verify(app.secret_hash if app is not None else _decoy_hash(), app_secret)
    except (VerificationError, InvalidHashError):
        raise errors.InvalidClient() from None
    if app is None or app.disabled:
        raise errors.InvalidClient()
    identify(app.app_key, app.org_id)
    return app


def mint_token(
    uow: UnitOfWork, app: repo.AppRecord, *, lifetimes: cred.TokenLifetimes, clock: Clock
) -> MintedToken:
    """Issue a new bearer token for an authenticated application."""
    token = cred.new_access_token()
    now = clock()
    with uow.write() as conn:
        repo.insert_token(
            conn,
            digest=cred.token_digest(token),
            app_id=app.id,
            issued_at=now,
            expires_at=now + lifetimes.absolute,
        )
    return MintedToken(token, int(lifetimes.absolute.total_seconds()), now, app.name)


def revoke_token(uow: UnitOfWork, app: repo.AppRecord, token: str, *, clock: Clock) -> bool:
    """Revoke one of the application's own tokens; unknown or foreign tokens are left alone."""
    return revoke_app_token(uow, app.id, token, clock=clock)


def revoke_app_token(uow: UnitOfWork, app_id: int, token: str, *, clock: Clock) -> bool:
    """Revoke a token of the application `app_id` (a dashboard's sign-out); others are left alone."""
    with uow.write() as conn:
        return repo.revoke_token(conn, digest=cred.token_digest(token), app_id=app_id, now=clock())


def list_apps(uow: UnitOfWork) -> list[repo.AppRecord]:
    """Every registered application."""
    with uow.read() as conn:
        return repo.list_apps(conn)


def set_disabled(uow: UnitOfWork, app_key: str, *, disabled: bool = True) -> bool:
    """Disable (or re-enable) an application; False when the key is unknown."""
    with uow.write() as conn:
        return repo.set_app_disabled(conn, app_key, disabled=disabled)


def set_allowed_networks(uow: UnitOfWork, app_key: str, networks: Sequence[Network]) -> bool:
    """Replace an application's IP allow-list (empty: any address), at once for its live tokens too.

    False when the key is unknown.
    """
    with uow.write() as conn:
        return repo.set_allowed_networks(conn, app_key, networks)
