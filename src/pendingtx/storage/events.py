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
from sqlalchemy.dialects import postgresql

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

# Where a statement may write in WITH (PostgreSQL), an organization's events are numbered, inserted
# and announced in one round trip instead of three or more: the jobs' rows give what each event
# copies, the arrays give each event's kind, public id, time (progress only) and place in order.
_NUMBER_INSERT_ANNOUNCE = Statement(
    sa.text(
        """
WITH taken AS (
    UPDATE organizations SET event_sequence = event_sequence + :count
    WHERE id = :org RETURNING event_sequence
), added AS (
    INSERT INTO events (org_id, job_id, job_key, status, record_count, processed_count, failed_count,
                        sequence, public_id, type, created_at)
    SELECT j.org_id, j.id, j.key,
           CASE WHEN e.type = :started THEN :in_progress ELSE j.status END,
           j.record_count,
           CASE WHEN e.type = :started THEN 0 ELSE j.processed_count END,
           CASE WHEN e.type = :started THEN 0 ELSE j.failed_count END,
           taken.event_sequence - :count + e.place, e.public_id, e.type,
           CASE e.type WHEN :submitted THEN j.submitted_at
                       WHEN :started THEN j.started_at
                       WHEN :completed THEN j.completed_at
                       ELSE e.at END
    FROM taken,
         unnest(:job_ids, :types, :public_ids, :times)
             WITH ORDINALITY AS e(job_id, type, public_id, at, place)
         JOIN jobs AS j ON j.id = e.job_id
)
SELECT taken.event_sequence AS last, pg_notify(:channel, :org_text || ':' || taken.event_sequence) AS notified
FROM taken
"""
    )
    .bindparams(
        sa.bindparam("count", type_=sa.BigInteger),
        sa.bindparam("org", type_=sa.BigInteger),
        sa.bindparam("org_text", type_=sa.Text),
        sa.bindparam("job_ids", type_=postgresql.ARRAY(sa.BigInteger)),
        sa.bindparam("types", type_=postgresql.ARRAY(sa.Text)),
        sa.bindparam("public_ids", type_=postgresql.ARRAY(sa.Text)),
        sa.bindparam("times", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
        sa.bindparam("started", EventType.STARTED.value, type_=sa.Text),
        sa.bindparam("submitted", EventType.SUBMITTED.value, type_=sa.Text),
        sa.bindparam("completed", EventType.COMPLETED.value, type_=sa.Text),
        sa.bindparam("in_progress", JobStatus.IN_PROGRESS.value, type_=sa.Text),
        sa.bindparam("channel", CHANNEL, type_=sa.Text),
    )
    .columns(sa.column("last", sa.BigInteger), sa.column("notified", sa.Text))
)
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
    dialect = dialect_for(conn)
    for org_id in sorted(by_org):
        org_events = by_org[org_id]
        if dialect.writable_ctes:
            recorded[org_id] = _number_insert_announce(conn, org_id, org_events)
            continue
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
        dialect.announce(conn, CHANNEL, f"{org_id}:{last}")


def _number_insert_announce(
    conn: sa.Connection, org_id: int, org_events: list[tuple[EventType, int, datetime]]
) -> int:
    values = {
        "count": len(org_events),
        "org": org_id,
        "org_text": str(org_id),
        "job_ids": [job_id for _, job_id, _ in org_events],
        "types": [kind.value for kind, _, _ in org_events],
        "public_ids": [new_event_id() for _ in org_events],
        "times": [now for _, _, now in org_events],
    }
    return int(run(conn, _NUMBER_INSERT_ANNOUNCE, values).one()[0])


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
