"""The event log: each job transition recorded once, in its own transaction, numbered per organization.

Every transition goes through a function in storage/jobs.py, storage/holds.py or storage/claim.py
that records its event in the same transaction (written by `flush` at commit), so no event can be missed or
invented. On PostgreSQL sequence numbers come from the organization's row, which the numbering locks
until commit: an organization's events therefore become visible strictly in sequence order, and a
reader resuming after sequence N can never miss one committed later with a smaller number. SQLite
has one writer at a time, which orders them already: there numbering continues from the log's highest
sequence and leaves the row alone (a commit then writes one page fewer); the row keeps only a floor,
raised by `keep_numbering` before events are deleted, so that numbers never go back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from pendingtx.domain.events import Event, EventType, new_event_ids
from pendingtx.domain.jobs import JobStatus
from pendingtx.storage.driver import Statement, dialect_for, record_of, run, run_many
from pendingtx.storage.tables import events, jobs, organizations

# PostgreSQL notification channel: "<org id>:<last sequence>" for each organization a commit wrote to.
CHANNEL = "pendingtx_events"
# Where a transaction collects what it recorded (org id -> last sequence), for UnitOfWork to publish
# after commit (storage/unit_of_work.py).
RECORDED = "pendingtx.events.recorded"

# A progress event (SQLite): the job's row as it stands, at the time bound.
_INSERT_PROGRESS = Statement(
    events.insert().from_select(
        [
            "org_id",
            "job_id",
            "job_key",
            "status",
            "record_count",
            "processed_count",
            "failed_count",
            "sequence",
            "public_id",
            "type",
            "created_at",
        ],
        sa.select(
            jobs.c.org_id,
            jobs.c.id,
            jobs.c.key,
            jobs.c.status,
            jobs.c.record_count,
            jobs.c.processed_count,
            jobs.c.failed_count,
            sa.bindparam("sequence", type_=events.c.sequence.type),
            sa.bindparam("public_id", type_=events.c.public_id.type),
            sa.literal(EventType.PROGRESS.value),
            sa.bindparam("now", type_=events.c.created_at.type),
        ).where(jobs.c.id == sa.bindparam("job")),
    )
)


def _insert_from_jobs(sequence: str, otherwise: str) -> str:
    """An INSERT of events `e` (job_id, type, public_id) copying their job `j`'s row: a start as the
    job began, the rest as the row stands; `sequence` numbers each, `otherwise` ends the CASE
    choosing its time."""
    return f"""INSERT INTO events (org_id, job_id, job_key, status, record_count, processed_count,
                    failed_count, sequence, public_id, type, created_at)
SELECT j.org_id, j.id, j.key,
       CASE WHEN e.type = :started THEN :in_progress ELSE j.status END,
       j.record_count,
       CASE WHEN e.type = :started THEN 0 ELSE j.processed_count END,
       CASE WHEN e.type = :started THEN 0 ELSE j.failed_count END,
       {sequence}, e.public_id, e.type,
       CASE e.type WHEN :submitted THEN j.submitted_at WHEN :started THEN j.started_at {otherwise} END"""


# Where a statement may write in WITH (PostgreSQL), an organization's events are numbered, inserted
# and announced in one statement instead of three or more: the jobs' rows give what each event
# copies, a JSON array gives each event's kind, public id, time (progress only) and place in order
# (one text parameter: psycopg's adaptation of four lists cost more than PostgreSQL takes to run it).
# Each event probes its job by id (LATERAL ... LIMIT 1): joined as planned from statistics, which
# take the JSON for a hundred rows, a table of a few hundred jobs or more was read whole per commit.
_PG_TIME = "WHEN :completed THEN j.completed_at ELSE e.at"
_NUMBER_INSERT_ANNOUNCE = Statement(
    sa.text(
        # Built from this module's constant fragments only (no value is ever formatted in).
        f"""
WITH taken AS (
    UPDATE organizations SET event_sequence = event_sequence + :count
    WHERE id = :org RETURNING event_sequence
), added AS (
    {_insert_from_jobs("taken.event_sequence - :count + e.place", _PG_TIME)}
    FROM taken,
         jsonb_to_recordset(CAST(:events AS jsonb))
             AS e(job_id bigint, type text, public_id text, at timestamptz, place bigint)
         CROSS JOIN LATERAL (SELECT * FROM jobs WHERE jobs.id = e.job_id LIMIT 1) AS j
)
SELECT taken.event_sequence AS last, pg_notify(:channel, :org_text || ':' || taken.event_sequence) AS notified
FROM taken
"""  # noqa: S608
    )
    .bindparams(
        sa.bindparam("count", type_=sa.BigInteger),
        sa.bindparam("org", type_=sa.BigInteger),
        sa.bindparam("org_text", type_=sa.Text),
        sa.bindparam("events", type_=sa.Text),
        sa.bindparam("started", EventType.STARTED.value, type_=sa.Text),
        sa.bindparam("submitted", EventType.SUBMITTED.value, type_=sa.Text),
        sa.bindparam("completed", EventType.COMPLETED.value, type_=sa.Text),
        sa.bindparam("in_progress", JobStatus.IN_PROGRESS.value, type_=sa.Text),
        sa.bindparam("channel", CHANNEL, type_=sa.Text),
    )
    .columns(sa.column("last", sa.BigInteger), sa.column("notified", sa.Text))
)
# SQLite's counterpart (numbering is a statement of its own there): the events of a transaction
# that copy their time from the job's row go in as one statement over a JSON array of
# [job id, type, public id, sequence], instead of a statement's execution per event, whose
# parameter handling in Python cost more than SQLite takes to insert the row.
_INSERT_EACH = Statement(
    sa.text(
        f"""
{_insert_from_jobs("e.sequence", "ELSE j.completed_at")}
FROM (SELECT json_extract(value, '$[0]') AS job_id, json_extract(value, '$[1]') AS type,
             json_extract(value, '$[2]') AS public_id, json_extract(value, '$[3]') AS sequence
      FROM json_each(:events)) AS e
     CROSS JOIN jobs AS j ON j.id = e.job_id
"""  # noqa: S608
    ).bindparams(
        sa.bindparam("events", type_=sa.Text),
        sa.bindparam("started", EventType.STARTED.value, type_=sa.Text),
        sa.bindparam("submitted", EventType.SUBMITTED.value, type_=sa.Text),
        sa.bindparam("in_progress", JobStatus.IN_PROGRESS.value, type_=sa.Text),
    )
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
    """Write the events this transaction recorded, as the last thing before its commit (on
    PostgreSQL, together with the commit: see Dialect.finish).

    On PostgreSQL numbering locks the organization's row until commit; taken last, the lock is held
    for the commit alone, and the jobs' rows already hold the state each event copies. Organizations
    are locked in id order, so two transactions numbering for the same ones cannot deadlock.
    """
    pending: list[tuple[int, EventType, int, datetime]] = conn.info.pop(_PENDING, [])
    recorded: dict[int, int] = conn.info.setdefault(RECORDED, {})
    by_org: dict[int, list[tuple[EventType, int, datetime]]] = {}
    for org_id, kind, job_id, now in pending:
        by_org.setdefault(org_id, []).append((kind, job_id, now))
    dialect = dialect_for(conn)
    if dialect.writable_ctes:
        orgs = sorted(by_org)
        numbering = [(_NUMBER_INSERT_ANNOUNCE, _numbering(org_id, by_org[org_id])) for org_id in orgs]
        for org_id, result in zip(orgs, dialect.finish(conn, numbering), strict=True):
            # Committed by now: nothing may fail here. Without its row, nobody is told at once; held
            # reads and streams still find the events at their next look.
            row = result.first()
            if row is not None:
                recorded[org_id] = int(row[0])
        return
    for org_id in sorted(by_org):
        org_events = by_org[org_id]
        last = last_sequence(conn, org_id) + len(org_events)
        copied: list[tuple[int, str, str, int]] = []
        progress: list[dict[str, Any]] = []
        ids = new_event_ids(len(org_events))
        for place, (kind, job_id, now) in enumerate(org_events):
            sequence = last - len(org_events) + 1 + place
            if kind is EventType.PROGRESS:
                # At most one a chunk, and its time is bound: the statement per event is no cost here.
                progress.append({"job": job_id, "sequence": sequence, "public_id": ids[place], "now": now})
            else:
                copied.append((job_id, kind.value, ids[place], sequence))
        # Each row carries its sequence, given out in order above, whatever order rows go in.
        if copied:
            run(conn, _INSERT_EACH, {"events": msgspec.json.encode(copied).decode()})
        if progress:
            run_many(conn, _INSERT_PROGRESS, progress)
        recorded[org_id] = last
        dialect.announce(conn, CHANNEL, f"{org_id}:{last}")


def _numbering(org_id: int, org_events: list[tuple[EventType, int, datetime]]) -> dict[str, Any]:
    ids = new_event_ids(len(org_events))
    rows = [
        {"job_id": job_id, "type": kind.value, "public_id": ids[place], "at": _utc(now), "place": place + 1}
        for place, (kind, job_id, now) in enumerate(org_events)
    ]
    events = _JSON.encode(rows).decode()
    return {"count": len(org_events), "org": org_id, "org_text": str(org_id), "events": events}


_JSON = msgspec.json.Encoder()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given for an event's time")
    return moment.astimezone(UTC)


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


def logged_highest(org_id: Any) -> sa.ScalarSelect[Any]:
    """The highest sequence in the organization's log (NULL when empty), along its sequence index."""
    return sa.select(sa.func.max(events.c.sequence)).where(events.c.org_id == org_id).scalar_subquery()


_LAST = Statement(
    sa.select(organizations.c.event_sequence, logged_highest(organizations.c.id).label("logged")).where(
        organizations.c.id == sa.bindparam("org_id")
    )
)


def last_sequence(conn: sa.Connection, org_id: int) -> int:
    """The organization's last event sequence given out (0 before its first event): the row's
    number, or the log's highest where numbering leaves the row behind (SQLite)."""
    row = run(conn, _LAST, {"org_id": org_id}).first()
    return 0 if row is None else max(int(row.event_sequence or 0), int(row.logged or 0))


_KEEP_NUMBERING = Statement(
    organizations.update()
    .where(
        organizations.c.id == sa.bindparam("org"),
        organizations.c.event_sequence < logged_highest(organizations.c.id),
    )
    .values(event_sequence=logged_highest(organizations.c.id))
)


def keep_numbering(conn: sa.Connection, org_ids: Iterable[int]) -> None:
    """Before deleting events of these organizations: raise each one's row to its log's highest
    sequence, so that numbering goes on from there even when the deleted events were the newest."""
    if not dialect_for(conn).writable_ctes:  # PostgreSQL's rows are numbered, never behind
        run_many(conn, _KEEP_NUMBERING, [{"org": org_id} for org_id in sorted(set(org_ids))])
