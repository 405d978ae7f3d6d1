"""Queries for organizations, applications, entitlements and access tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pendingtx.domain.networks import Network, allow_list_from_text, allow_list_text
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


def ensure_organization(conn: sa.Connection, name: str, *, now: datetime) -> int:
    """The id of the named organization, created on first use."""
    found = conn.execute(sa.select(organizations.c.id).where(organizations.c.name == name)).scalar()
    if found is not None:
        return int(found)
    inserted = conn.execute(
        organizations.insert().values(name=name, created_at=now).returning(organizations.c.id)
    )
    return int(inserted.scalar_one())


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
    result = conn.execute(
        apps.insert()
        .values(
            org_id=org_id,
            name=name,
            app_key=app_key,
            secret_hash=secret_hash,
            created_at=now,
            allowed_ips=allow_list_text(allowed_networks),
        )
        .returning(apps.c.id)
    )
    app_id = int(result.scalar_one())
    rows = [{"app_id": app_id, "product": p} for p in sorted(set(products))]
    if rows:
        conn.execute(entitlements.insert(), rows)
    return app_id


_APPS = sa.select(apps, organizations.c.name.label("org_name")).join(
    organizations, organizations.c.id == apps.c.org_id
)


def _load_apps(conn: sa.Connection, query: sa.Select[tuple[object, ...]]) -> list[AppRecord]:
    rows = conn.execute(query.order_by(apps.c.id)).all()
    products: dict[int, list[str]] = {}
    if rows:
        ids = [row._mapping["id"] for row in rows]
        granted = conn.execute(
            sa.select(entitlements.c.app_id, entitlements.c.product).where(entitlements.c.app_id.in_(ids))
        )
        for app_id, product in granted:
            products.setdefault(app_id, []).append(product)
    return [
        AppRecord(
            id=m["id"],
            org_id=m["org_id"],
            org_name=m["org_name"],
            name=m["name"],
            app_key=m["app_key"],
            secret_hash=m["secret_hash"],
            disabled=bool(m["disabled"]),
            products=tuple(sorted(products.get(m["id"], []))),
            created_at=m["created_at"],
            allowed_networks=allow_list_from_text(m["allowed_ips"]),
        )
        for m in (row._mapping for row in rows)
    ]


def find_app(conn: sa.Connection, app_key: str) -> AppRecord | None:
    """The application with this key, if any."""
    found = _load_apps(conn, _APPS.where(apps.c.app_key == app_key))
    return found[0] if found else None


def list_apps(conn: sa.Connection) -> list[AppRecord]:
    """Every application, oldest first."""
    return _load_apps(conn, _APPS)


def set_app_disabled(conn: sa.Connection, app_key: str, *, disabled: bool) -> bool:
    """Disable or enable an application; False when no such application exists."""
    result = conn.execute(apps.update().where(apps.c.app_key == app_key).values(disabled=disabled))
    return result.rowcount == 1


def set_allowed_networks(conn: sa.Connection, app_key: str, networks: Iterable[Network]) -> bool:
    """Replace an application's IP allow-list (no networks: any address); False when no such application."""
    result = conn.execute(
        apps.update().where(apps.c.app_key == app_key).values(allowed_ips=allow_list_text(networks))
    )
    return result.rowcount == 1


def insert_token(
    conn: sa.Connection, *, digest: str, app_id: int, issued_at: datetime, expires_at: datetime
) -> None:
    """Store a freshly minted token by its digest."""
    conn.execute(
        tokens.insert().values(
            digest=digest,
            app_id=app_id,
            issued_at=issued_at,
            expires_at=expires_at,
            last_used_at=issued_at,
        )
    )


def revoke_token(conn: sa.Connection, *, digest: str, app_id: int, now: datetime) -> bool:
    """Revoke one of the application's own tokens; False when it has no such live token."""
    result = conn.execute(
        tokens.update()
        .where(tokens.c.digest == digest, tokens.c.app_id == app_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1


def touch_token(conn: sa.Connection, token_id: int, *, now: datetime) -> None:
    """Record that a token was used (coarsely; see TokenLifetimes.touch_interval)."""
    conn.execute(tokens.update().where(tokens.c.id == token_id).values(last_used_at=now))
