"""The event log: each job transition recorded once, in its own transaction, numbered per organization.

Every transition goes through a function in storage/jobs.py, storage/holds.py or storage/claim.py
that records its event in the same transaction (written by `flush` at commit), so no event can be missed or
invented. Sequence numbers come from the organization's row, which the numbering locks until commit:
an organization's events therefore become visible strictly in sequence order, and a reader resuming
after sequence N can never miss one committed later with a smaller number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.events import Event, EventType, new_event_id
from pendingtx.domain.jobs import JobStatus
from pendingtx.storage.driver import Statement, dialect_for, record_of, run, run_many
from pendingtx.storage.tables import events, jobs, organizations

# PostgreSQL notification channel: "<org id>:<last sequence>" for each organization a commit wrote to.
CHANNEL = "pendingtx_events"
# Where a transaction collects what it recorded (org id -> last sequence), for UnitOfWork to publish
# after commit (storage/unit_of_work.py).
RECORDED = "pendingtx.events.recorded"

_TAKE_SEQUENCES = Statement(
    organizations.update()
    .where(organizations.c.id == sa.bindparam("org"))
    .values(event_sequence=organizations.c.event_sequence + sa.bindparam("count"))
    .returning(organizations.c.event_sequence)
)
# The event's columns copied from the job's row, and the job's column where its name differs.
_FROM_JOB = ("org_id", "job_id", "job_key", "status", "record_count", "processed_count", "failed_count")
_JOB_COLUMN = {"job_id": "id", "job_key": "key"}
# A job starts with nothing processed; small jobs start and end in one transaction, where the row
# already holds the end.
_AT_START: dict[str, Any] = {
    "status": sa.literal(JobStatus.IN_PROGRESS.value),
    "processed_count": sa.literal(0),
    "failed_count": sa.literal(0),
}


# When each kind of event happened is in the job's row already (binding a time costs more than the
# rest of the row); a progress event's time is bound.
_WHEN = {
    EventType.SUBMITTED: jobs.c.submitted_at,
    EventType.STARTED: jobs.c.started_at,
    EventType.COMPLETED: jobs.c.completed_at,
}


def _insert(kind: EventType) -> Statement:
    copied = _AT_START if kind is EventType.STARTED else {}
    return Statement(
        events.insert().from_select(
            [*_FROM_JOB, "sequence", "public_id", "type", "created_at"],
            sa.select(
                *(copied.get(name, jobs.c[_JOB_COLUMN.get(name, name)]) for name in _FROM_JOB),
                sa.bindparam("sequence", type_=events.c.sequence.type),
                sa.bindparam("public_id", type_=events.c.public_id.type),
                sa.literal(kind.value),
                _WHEN.get(kind, sa.bindparam("now", type_=events.c.created_at.type)),
            ).where(jobs.c.id == sa.bindparam("job")),
        )
    )


_INSERTS = {kind: _insert(kind) for kind in EventType}
# Events a transaction has recorded, written by `flush` just before it commits.
_PENDING = "pendingtx.events.pending"


def record(
    conn: sa.Connection, kind: EventType, job_ids: Iterable[int], *, org_id: int, now: datetime
) -> None:
    """Record `kind` for each of the organization's jobs in this transaction (written at commit, see
    `flush`)."""
    pending: list[tuple[int, EventType, int, datetime]] = conn.info.setdefault(_PENDING, [])
    pending.extend((org_id, kind, job_id, now) for job_id in job_ids)


def flush(conn: sa.Connection) -> None:
    """Write the events this transaction recorded, as the last thing before its commit.

    Numbering locks the organization's row until commit; taken last, the lock is held for the
    commit alone, and the jobs' rows already hold the state each event copies. Organizations are
    locked in id order, so two transactions numbering for the same ones cannot deadlock.
    """
    pending: list[tuple[int, EventType, int, datetime]] = conn.info.pop(_PENDING, [])
    recorded: dict[int, int] = conn.info.setdefault(RECORDED, {})
    by_org: dict[int, list[tuple[EventType, int, datetime]]] = {}
    for org_id, kind, job_id, now in pending:
        by_org.setdefault(org_id, []).append((kind, job_id, now))
    for org_id in sorted(by_org):
        org_events = by_org[org_id]
        last = int(run(conn, _TAKE_SEQUENCES, {"org": org_id, "count": len(org_events)}).one()[0])
        rows: dict[EventType, list[dict[str, Any]]] = {}
        for sequence, (kind, job_id, now) in enumerate(org_events, start=last - len(org_events) + 1):
            values: dict[str, Any] = {"job": job_id, "sequence": sequence, "public_id": new_event_id()}
            if kind is EventType.PROGRESS:
                values["now"] = now
            rows.setdefault(kind, []).append(values)
        # Sequence numbers are given out in order above; rows of a kind are inserted together.
        for kind, values_of_kind in rows.items():
            run_many(conn, _INSERTS[kind], values_of_kind)
        recorded[org_id] = last
        dialect_for(conn).announce(conn, CHANNEL, f"{org_id}:{last}")


_STARTED = Statement(
    sa.select(events.c.id)
    .where(events.c.job_id == sa.bindparam("job"), events.c.type == EventType.STARTED.value)
    .limit(1)
)


def record_start(conn: sa.Connection, job_id: int, *, org_id: int, now: datetime) -> None:
    """Record that the job started, unless it did before (a takeover resumes a started job)."""
    pending = conn.info.get(_PENDING, ())
    if any(kind is EventType.STARTED and job == job_id for _, kind, job, _ in pending):
        return
    if run(conn, _STARTED, {"job": job_id}).first() is None:
        record(conn, EventType.STARTED, [job_id], org_id=org_id, now=now)


def take_recorded(conn: sa.Connection) -> Mapping[int, int]:
    """What this transaction recorded (org id -> last sequence), forgotten here: the connection is
    pooled, and its next transaction starts afresh."""
    conn.info.pop(_PENDING, None)
    found: Mapping[int, int] = conn.info.pop(RECORDED, {})
    return found


_COLUMNS = (
    events.c.public_id,
    events.c.sequence,
    events.c.type,
    events.c.created_at,
    events.c.job_key,
    events.c.job_id,
    events.c.status,
    events.c.record_count,
    events.c.processed_count,
    events.c.failed_count,
)


def _page(by_key: bool, by_type: bool) -> Statement:
    conditions = [events.c.org_id == sa.bindparam("org_id"), events.c.sequence > sa.bindparam("after")]
    if by_key:
        # Along the job_id index: a job has a handful of events.
        job = sa.select(jobs.c.id).where(
            jobs.c.key == sa.bindparam("key"), jobs.c.org_id == sa.bindparam("org_id")
        )
        conditions.append(events.c.job_id == job.scalar_subquery())
    if by_type:
        conditions.append(events.c.type == sa.bindparam("type", type_=events.c.type.type))
    query = sa.select(*_COLUMNS).where(*conditions).order_by(events.c.sequence).limit(sa.bindparam("limit"))
    return Statement(query)


_PAGES = {(by_key, by_type): _page(by_key, by_type) for by_key in (False, True) for by_type in (False, True)}


def page(
    conn: sa.Connection,
    org_id: int,
    *,
    after: int,
    limit: int,
    kind: EventType | None = None,
    job_key: str | None = None,
) -> list[Event]:
    """The organization's events after sequence `after`, oldest first, at most `limit` of them."""
    values: dict[str, Any] = {"org_id": org_id, "after": after, "limit": limit}
    if job_key is not None:
        values["key"] = job_key
    if kind is not None:
        values["type"] = kind
    rows = run(conn, _PAGES[job_key is not None, kind is not None], values).all()
    return [record_of(Event, row) for row in rows]


_LAST = Statement(
    sa.select(organizations.c.event_sequence).where(organizations.c.id == sa.bindparam("org_id"))
)


def last_sequence(conn: sa.Connection, org_id: int) -> int:
    """The organization's last event sequence given out (0 before its first event)."""
    found = run(conn, _LAST, {"org_id": org_id}).scalar()
    return int(found or 0)
