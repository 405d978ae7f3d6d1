"""Sandbox mode's storage (contract 7.6): the database's mode marker, the clock offset kept with it,
and the reset that empties one organization.

The marker is a row of `server_keys` (the table of the service's own one-row-per-use values), so
that it needs no migration: present in a sandbox's database, absent from every other one.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.config import SettingsError, env_name
from pendingtx.storage import events as events_repo
from pendingtx.storage.driver import Statement, run
from pendingtx.storage.generations import bump
from pendingtx.storage.tables import (
    events,
    job_claims,
    job_problems,
    job_tombstones,
    jobs,
    organizations,
    server_keys,
    transactions,
    webhook_deliveries,
)
from pendingtx.storage.unit_of_work import UnitOfWork

MARKER = "sandbox"
CLOCK_OFFSET = "sandbox-clock"
_MARKER_VALUE = b"sandbox"


class DatabaseRefused(SettingsError):
    """The database belongs to the other mode: a sandbox's to a production server, or the reverse."""


_VALUE = Statement(sa.select(server_keys.c.secret).where(server_keys.c.name == sa.bindparam("name")))
_ADD = Statement(
    server_keys.insert().values(
        name=sa.bindparam("name"),
        secret=sa.bindparam("secret"),
        created_at=sa.bindparam("now", type_=server_keys.c.created_at.type),
    )
)
_SET = Statement(
    server_keys.update()
    .where(server_keys.c.name == sa.bindparam("key_name"))
    .values(secret=sa.bindparam("secret"))
)
# A database is unused while it has no organization (every application and job belongs to one).
_USED = Statement(sa.select(organizations.c.id).limit(1))


def check_mode(uow: UnitOfWork, *, sandbox: bool, now: datetime) -> None:
    """Refuse a database of the other mode; a sandbox marks a database nobody has used yet as its own.

    A production server only reads: without the marker, nothing about its database changes.
    """
    with uow.write() if sandbox else uow.read() as conn:
        marked = run(conn, _VALUE, {"name": MARKER}).first() is not None
        if marked and not sandbox:
            raise DatabaseRefused(
                "this database is a sandbox's (made with --sandbox); a production server refuses it: "
                f"use another database, or serve it with --sandbox ({env_name('sandbox')}=true)"
            )
        if marked or not sandbox:
            return
        if run(conn, _USED).first() is not None:
            raise DatabaseRefused(
                "this database has been used without sandbox mode; a sandbox refuses it: "
                "give the sandbox a fresh database (--database-url)"
            )
        run(conn, _ADD, {"name": MARKER, "secret": _MARKER_VALUE, "now": now})


def clock_offset(uow: UnitOfWork) -> float:
    """The seconds the sandbox's clock has been moved forward (0 when it never was)."""
    with uow.read() as conn:
        stored = run(conn, _VALUE, {"name": CLOCK_OFFSET}).scalar()
    return float(struct.unpack("!d", bytes(stored))[0]) if stored is not None else 0.0


def save_clock_offset(uow: UnitOfWork, seconds: float, *, now: datetime) -> None:
    """Keep the clock's offset, so that a restart or another process of the sandbox reads it."""
    value = struct.pack("!d", seconds)
    with uow.write() as conn:
        if run(conn, _SET, {"key_name": CLOCK_OFFSET, "secret": value}).rowcount == 0:
            run(conn, _ADD, {"name": CLOCK_OFFSET, "secret": value, "now": now})


def event_count(conn: sa.Connection, org_id: int) -> int:
    """How many events the organization has numbered so far (a reset does not take it back)."""
    return events_repo.last_sequence(conn, org_id)


_ORG = sa.bindparam("org_id", type_=jobs.c.org_id.type)


def _org_events() -> sa.ScalarSelect[Any]:
    return sa.select(events.c.id).where(events.c.org_id == _ORG).scalar_subquery()


def _org_jobs() -> sa.ScalarSelect[Any]:
    return sa.select(jobs.c.id).where(jobs.c.org_id == _ORG).scalar_subquery()


# Children first (a delivery's attempts go with it, by cascade); the organization's webhook
# endpoints, applications and event numbering stay.
_RESET: tuple[Statement, ...] = (
    Statement(sa.delete(webhook_deliveries).where(webhook_deliveries.c.event_id.in_(_org_events()))),
    Statement(sa.delete(events).where(events.c.org_id == _ORG)),
    Statement(sa.delete(job_problems).where(job_problems.c.job_id.in_(_org_jobs()))),
    Statement(sa.delete(job_claims).where(job_claims.c.job_id.in_(_org_jobs()))),
    Statement(sa.delete(job_tombstones).where(job_tombstones.c.org_id == _ORG)),
    Statement(sa.delete(jobs).where(jobs.c.org_id == _ORG)),
    Statement(sa.delete(transactions).where(transactions.c.org_id == _ORG)),
)


def reset_organization(uow: UnitOfWork, org_id: int) -> None:
    """Delete the organization's transactions, jobs (with their child rows) and events, at once."""
    with uow.write() as conn:
        events_repo.keep_numbering(conn, [org_id])
        for statement in _RESET:
            run(conn, statement, {"org_id": org_id})
        bump(conn, [org_id])
