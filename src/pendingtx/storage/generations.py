"""An organization's cache generation: bumped in the same transaction as any change to what a
process may keep in memory about it (a token revoked, an application disabled or its allow-list
changed, a job deleted), so that what was kept can be checked against one number instead of re-read.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from pendingtx.storage.driver import Statement, run, run_many
from pendingtx.storage.tables import apps, organizations

_NEXT = {"cache_generation": organizations.c.cache_generation + 1}
_BUMP = Statement(organizations.update().where(organizations.c.id == sa.bindparam("org_id")).values(_NEXT))


def _bump_of_app(app: sa.ColumnElement[bool]) -> Statement:
    org_of_app = sa.select(apps.c.org_id).where(app).scalar_subquery()
    return Statement(organizations.update().where(organizations.c.id == org_of_app).values(_NEXT))


_BUMP_OF_APP_KEY = _bump_of_app(apps.c.app_key == sa.bindparam("app_key"))
_BUMP_OF_APP_ID = _bump_of_app(apps.c.id == sa.bindparam("app_id"))
CURRENT = Statement(
    sa.select(organizations.c.cache_generation).where(organizations.c.id == sa.bindparam("org_id"))
)


def bump(conn: sa.Connection, org_ids: Iterable[int]) -> None:
    """Tell every process that what it keeps about these organizations may be wrong from this commit.

    In id order, as event numbering locks the same rows (storage/events.py): no deadlock between them.
    """
    run_many(conn, _BUMP, [{"org_id": org_id} for org_id in sorted(set(org_ids))])


def bump_of_app(conn: sa.Connection, app_key: str) -> None:
    """As `bump`, for the organization of the application with this AppKey."""
    run(conn, _BUMP_OF_APP_KEY, {"app_key": app_key})


def bump_of_app_id(conn: sa.Connection, app_id: int) -> None:
    """As `bump`, for the organization of the application with this id."""
    run(conn, _BUMP_OF_APP_ID, {"app_id": app_id})
