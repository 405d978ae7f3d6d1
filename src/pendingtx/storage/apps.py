"""Queries for organizations, applications, entitlements and access tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.networks import Network
from pendingtx.storage.driver import Statement, parameters_for, run, run_many
from pendingtx.storage.generations import bump_of_app, bump_of_app_id
from pendingtx.storage.tables import apps, entitlements, organizations, tokens


@dataclass(frozen=True, slots=True)
class AppRecord:
    """An application with its organization and entitlements."""

    id: int
    org_id: int
    org_name: str
    name: str
    app_key: str
    secret_hash: str
    disabled: bool
    products: tuple[str, ...]
    created_at: datetime
    # The IP allow-list; None: any address.
    allowed_networks: tuple[Network, ...] | None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token joined with what authentication needs to know of its application."""

    id: int
    app_id: int
    app_key: str
    app_name: str
    org_id: int
    app_disabled: bool
    entitled: bool
    expires_at: datetime
    last_used_at: datetime
    revoked: bool
    # The application's IP allow-list; None: any address.
    allowed_networks: tuple[Network, ...] | None
    # The organization's cache generation when this was read (storage/generations.py).
    generation: int = 0


_ORGANIZATION = Statement(sa.select(organizations.c.id).where(organizations.c.name == sa.bindparam("name")))
_ADD_ORGANIZATION = Statement(
    organizations.insert()
    .values(parameters_for(organizations, "name", "created_at"))
    .returning(organizations.c.id)
)


def ensure_organization(conn: sa.Connection, name: str, *, now: datetime) -> int:
    """The id of the named organization, created on first use."""
    found = run(conn, _ORGANIZATION, {"name": name}).first()
    if found is not None:
        return int(found.id)
    return int(run(conn, _ADD_ORGANIZATION, {"name": name, "created_at": now}).one().id)


_ADD_APP = Statement(
    apps.insert()
    .values(parameters_for(apps, "org_id", "name", "app_key", "secret_hash", "created_at", "allowed_ips"))
    .returning(apps.c.id)
)
_ENTITLE = Statement(entitlements.insert().values(parameters_for(entitlements, "app_id", "product")))


def insert_app(
    conn: sa.Connection,
    *,
    org_id: int,
    name: str,
    app_key: str,
    secret_hash: str,
    products: Iterable[str],
    now: datetime,
    allowed_networks: Iterable[Network] = (),
) -> int:
    """Store a new application and its entitlements."""
    values = {
        "org_id": org_id,
        "name": name,
        "app_key": app_key,
        "secret_hash": secret_hash,
        "created_at": now,
        "allowed_ips": tuple(allowed_networks),
    }
    app_id = int(run(conn, _ADD_APP, values).one().id)
    run_many(conn, _ENTITLE, [{"app_id": app_id, "product": p} for p in sorted(set(products))])
    return app_id


def _apps(where: sa.ColumnElement[bool] | None) -> Statement:
    query = (
        sa.select(
            apps,
            organizations.c.name.label("org_name"),
            entitlements.c.product,
        )
        .join(organizations, organizations.c.id == apps.c.org_id)
        .outerjoin(entitlements, entitlements.c.app_id == apps.c.id)
        .order_by(apps.c.id, entitlements.c.product)
    )
    return Statement(query if where is None else query.where(where))


_ALL_APPS = _apps(None)
_APP_BY_KEY = _apps(apps.c.app_key == sa.bindparam("app_key"))


def _records(rows: list[Any]) -> list[AppRecord]:
    """One record per application: its rows (one per entitlement) grouped."""
    products: dict[int, list[str]] = {}
    first: dict[int, Any] = {}
    for row in rows:
        first.setdefault(row.id, row)
        if row.product is not None:
            products.setdefault(row.id, []).append(row.product)
    return [
        AppRecord(
            id=m.id,
            org_id=m.org_id,
            org_name=m.org_name,
            name=m.name,
            app_key=m.app_key,
            secret_hash=m.secret_hash,
            disabled=bool(m.disabled),
            products=tuple(products.get(app_id, [])),
            created_at=m.created_at,
            allowed_networks=m.allowed_ips,
        )
        for app_id, m in first.items()
    ]


def find_app(conn: sa.Connection, app_key: str) -> AppRecord | None:
    """The application with this key, if any."""
    found = _records(run(conn, _APP_BY_KEY, {"app_key": app_key}).all())
    return found[0] if found else None


def list_apps(conn: sa.Connection) -> list[AppRecord]:
    """Every application, oldest first."""
    return _records(run(conn, _ALL_APPS).all())


_SET_DISABLED = Statement(
    apps.update().where(apps.c.app_key == sa.bindparam("app_key")).values(disabled=sa.bindparam("disabled"))
)
_SET_ALLOWED = Statement(
    apps.update()
    .where(apps.c.app_key == sa.bindparam("app_key"))
    .values(allowed_ips=sa.bindparam("allowed_ips"))
)


def set_app_disabled(conn: sa.Connection, app_key: str, *, disabled: bool) -> bool:
    """Disable or enable an application; False when no such application exists."""
    bump_of_app(conn, app_key)
    return run(conn, _SET_DISABLED, {"app_key": app_key, "disabled": disabled}).rowcount == 1


def set_allowed_networks(conn: sa.Connection, app_key: str, networks: Iterable[Network]) -> bool:
    """Replace an application's IP allow-list (no networks: any address); False when no such application."""
    values = {"app_key": app_key, "allowed_ips": tuple(networks)}
    bump_of_app(conn, app_key)
    return run(conn, _SET_ALLOWED, values).rowcount == 1


_ADD_TOKEN = Statement(
    tokens.insert().values(
        parameters_for(tokens, "digest", "app_id", "issued_at", "expires_at", "last_used_at")
    )
)


def insert_token(
    conn: sa.Connection, *, digest: str, app_id: int, issued_at: datetime, expires_at: datetime
) -> None:
    """Store a freshly minted token by its digest."""
    values = {"digest": digest, "app_id": app_id, "issued_at": issued_at, "expires_at": expires_at}
    run(conn, _ADD_TOKEN, {**values, "last_used_at": issued_at})


_REVOKE = Statement(
    tokens.update()
    .where(
        tokens.c.digest == sa.bindparam("digest"),
        tokens.c.app_id == sa.bindparam("app_id"),
        tokens.c.revoked_at.is_(None),
    )
    .values(revoked_at=sa.bindparam("now", type_=tokens.c.revoked_at.type))
)


def revoke_token(conn: sa.Connection, *, digest: str, app_id: int, now: datetime) -> bool:
    """Revoke one of the application's own tokens; False when it has no such live token."""
    revoked = run(conn, _REVOKE, {"digest": digest, "app_id": app_id, "now": now}).rowcount == 1
    if revoked:
        bump_of_app_id(conn, app_id)
    return revoked


_TOUCH = Statement(
    tokens.update()
    .where(tokens.c.id == sa.bindparam("token_id"))
    .values(last_used_at=sa.bindparam("now", type_=tokens.c.last_used_at.type))
)


def touch_token(conn: sa.Connection, token_id: int, *, now: datetime) -> None:
    """Record that a token was used (coarsely; see TokenLifetimes.touch_interval)."""
    run(conn, _TOUCH, {"token_id": token_id, "now": now})
