"""The service's own secret keys, kept in its database so that every process and restart uses the same.

A key is made by the first process that needs it; a process reads it once and keeps it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import sqlalchemy as sa

from pendingtx.clock import Clock
from pendingtx.domain.cursors import CursorKey, new_cursor_key
from pendingtx.storage.driver import Statement, run
from pendingtx.storage.tables import server_keys
from pendingtx.storage.unit_of_work import UnitOfWork

CURSOR_KEY = "cursors"
# Derives the dashboard's CSRF tokens (api/ui/csrf.py).
DASHBOARD_KEY = "dashboard"


def stored_key(uow: UnitOfWork, name: str, make: Callable[[], bytes], clock: Clock) -> bytes:
    """The key stored under `name`; when there is none yet, `make` one and store it first."""
    found = _read(uow, name)
    if found is not None:
        return found
    try:
        with uow.write() as conn:
            run(conn, _ADD_KEY, {"name": name, "secret": make(), "now": clock()})
    except sa.exc.IntegrityError:
        pass  # another process stored its key first: that one is the key, for every process
    found = _read(uow, name)
    if found is None:
        raise RuntimeError(f"the server key {name!r} was stored but cannot be read back")
    return found


_KEY = Statement(sa.select(server_keys.c.secret).where(server_keys.c.name == sa.bindparam("name")))
_ADD_KEY = Statement(
    server_keys.insert().values(
        name=sa.bindparam("name"),
        secret=sa.bindparam("secret"),
        created_at=sa.bindparam("now", type_=server_keys.c.created_at.type),
    )
)


def _read(uow: UnitOfWork, name: str) -> bytes | None:
    with uow.read() as conn:
        secret = run(conn, _KEY, {"name": name}).scalar()
    return bytes(secret) if secret is not None else None


class ServerKeys:
    """The keys of one process, each read from the database on first use; safe from several threads."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self._lock = threading.Lock()
        self._cursor_key: CursorKey | None = None
        self._dashboard_key: bytes | None = None

    def cursor_key(self) -> CursorKey:
        """The key that seals list cursors (may read or store it: call where blocking is allowed)."""
        key = self._cursor_key
        if key is None:
            with self._lock:
                if self._cursor_key is None:
                    secret = stored_key(self._uow, CURSOR_KEY, new_cursor_key, self._clock)
                    self._cursor_key = CursorKey(secret)
                key = self._cursor_key
        return key

    def dashboard_key(self) -> bytes:
        """The key the dashboard derives its CSRF tokens with (may read or store it, like `cursor_key`)."""
        key = self._dashboard_key
        if key is None:
            with self._lock:
                if self._dashboard_key is None:
                    self._dashboard_key = stored_key(
                        self._uow, DASHBOARD_KEY, lambda: os.urandom(32), self._clock
                    )
                key = self._dashboard_key
        return key
