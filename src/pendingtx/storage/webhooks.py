"""Webhook endpoints, their delivery outbox and the delivery log (contract 7.3).

Every read and change of an endpoint is scoped to its organization. The outbox is filled from the
event log by `dispatch` (the endpoint's cursor advances in the same transaction as the deliveries
it made, so an event is turned into a delivery exactly once) and emptied by workers that `lease` a
delivery, send it, and `finish` it; a lease that runs out makes the delivery claimable again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.events import Event, EventType
from pendingtx.domain.webhooks import DeliveryState, events_from_text
from pendingtx.storage import events as event_log
from pendingtx.storage.driver import Statement, record_of, run, run_many
from pendingtx.storage.tables import events, organizations, webhook_attempts, webhook_deliveries, webhooks

_TIME = webhooks.c.created_at.type


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A stored endpoint (its secret still encrypted)."""

    id: int
    org_id: int
    public_id: str
    url: str
    events: str
    description: str | None
    secret: bytes
    enabled: bool
    cursor: int
    failing_since: datetime | None
    created_at: datetime

    @property
    def event_types(self) -> tuple[EventType, ...]:
        """The event types it receives."""
        return events_from_text(self.events)


_ENDPOINT_COLUMNS = [webhooks.c[f] for f in Endpoint.__dataclass_fields__]

_INSERT = Statement(
    webhooks.insert()
    .values({c.name: sa.bindparam(c.name, type_=c.type) for c in webhooks.columns if c.name != "id"})
    .returning(webhooks.c.id)
)
_COUNT = Statement(sa.select(sa.func.count().label("n")).where(webhooks.c.org_id == sa.bindparam("org_id")))
_LIST = Statement(
    sa.select(*_ENDPOINT_COLUMNS).where(webhooks.c.org_id == sa.bindparam("org_id")).order_by(webhooks.c.id)
)
_FIND = Statement(
    sa.select(*_ENDPOINT_COLUMNS).where(
        webhooks.c.org_id == sa.bindparam("org_id"), webhooks.c.public_id == sa.bindparam("public_id")
    )
)
_UPDATE = Statement(
    webhooks.update()
    .where(webhooks.c.id == sa.bindparam("_id"), webhooks.c.org_id == sa.bindparam("_org_id"))
    .values(
        url=sa.bindparam("url"),
        events=sa.bindparam("events"),
        description=sa.bindparam("description"),
        enabled=sa.bindparam("enabled"),
        cursor=sa.bindparam("cursor"),
        failing_since=sa.bindparam("failing_since", type_=_TIME),
    )
)
_DELETE = Statement(
    webhooks.delete().where(
        webhooks.c.org_id == sa.bindparam("org_id"), webhooks.c.public_id == sa.bindparam("public_id")
    )
)


_LOCK_ORG = Statement(
    sa.select(organizations.c.id).where(organizations.c.id == sa.bindparam("org_id")).with_for_update()
)


def lock_organization(conn: sa.Connection, org_id: int) -> None:
    """Hold the organization's row until commit, so that two registrations cannot both pass the limit
    (SQLite's one writer needs no lock)."""
    run(conn, _LOCK_ORG, {"org_id": org_id})


def count(conn: sa.Connection, org_id: int) -> int:
    """How many endpoints the organization has."""
    return int(run(conn, _COUNT, {"org_id": org_id}).scalar() or 0)


def insert(conn: sa.Connection, values: dict[str, Any]) -> int:
    """Store a new endpoint; its row id."""
    return int(run(conn, _INSERT, values).scalar())


def list_endpoints(conn: sa.Connection, org_id: int) -> list[Endpoint]:
    """The organization's endpoints, oldest first."""
    return [record_of(Endpoint, row) for row in run(conn, _LIST, {"org_id": org_id}).all()]


def find(conn: sa.Connection, org_id: int, public_id: str) -> Endpoint | None:
    """The organization's endpoint of that id, or None (also when another organization has it)."""
    row = run(conn, _FIND, {"org_id": org_id, "public_id": public_id}).first()
    return record_of(Endpoint, row) if row is not None else None


def update(conn: sa.Connection, endpoint: Endpoint) -> None:
    """Store the endpoint's changeable fields as given."""
    run(
        conn,
        _UPDATE,
        {
            "_id": endpoint.id,
            "_org_id": endpoint.org_id,
            "url": endpoint.url,
            "events": endpoint.events,
            "description": endpoint.description,
            "enabled": endpoint.enabled,
            "cursor": endpoint.cursor,
            "failing_since": endpoint.failing_since,
        },
    )


def delete(conn: sa.Connection, org_id: int, public_id: str) -> bool:
    """Delete the endpoint with its deliveries and their log; False when the organization has none such."""
    return run(conn, _DELETE, {"org_id": org_id, "public_id": public_id}).rowcount == 1


# --- the outbox ---------------------------------------------------------------------------------------

_BEHIND = Statement(
    sa.select(webhooks.c.id, webhooks.c.org_id, webhooks.c.cursor, webhooks.c.events)
    .join(organizations, organizations.c.id == webhooks.c.org_id)
    .where(
        webhooks.c.enabled.is_(True),
        # The organization's last sequence (storage/events.py): its row's, or its log's where higher.
        sa.or_(
            webhooks.c.cursor < organizations.c.event_sequence,
            webhooks.c.cursor < event_log.logged_highest(organizations.c.id),
        ),
    )
    .order_by(webhooks.c.id)
    .limit(sa.bindparam("limit"))
)
_ADVANCE = Statement(
    webhooks.update()
    .where(webhooks.c.id == sa.bindparam("_id"), webhooks.c.cursor == sa.bindparam("_from"))
    .values(cursor=sa.bindparam("cursor"))
)
_ADD_DELIVERY = Statement(
    webhook_deliveries.insert().values(
        webhook_id=sa.bindparam("webhook_id"),
        event_id=sa.bindparam("event_id"),
        state=sa.bindparam("state"),
        attempts=0,
        due_at=sa.bindparam("now", type_=_TIME),
        created_at=sa.bindparam("now", type_=_TIME),
    )
)
_EVENT_IDS = Statement(
    sa.select(events.c.id, events.c.sequence).where(
        events.c.org_id == sa.bindparam("org_id"),
        events.c.sequence > sa.bindparam("after"),
        events.c.sequence <= sa.bindparam("upto"),
    )
)


@dataclass(frozen=True, slots=True)
class Behind:
    """An enabled endpoint with events it has not turned into deliveries yet."""

    id: int
    org_id: int
    cursor: int
    events: str


_WATCHED = Statement(sa.select(webhooks.c.org_id).where(webhooks.c.enabled.is_(True)).distinct())


def watched_organizations(conn: sa.Connection) -> frozenset[int]:
    """The organizations with an enabled endpoint."""
    return frozenset(row[0] for row in run(conn, _WATCHED).all())


def behind(conn: sa.Connection, *, limit: int) -> list[Behind]:
    """Enabled endpoints (of every organization) whose cursor is behind their organization's log."""
    return [record_of(Behind, row) for row in run(conn, _BEHIND, {"limit": limit}).all()]


def dispatch(conn: sa.Connection, endpoint: Behind, *, limit: int, now: datetime) -> int | None:
    """Turn up to `limit` of the endpoint's next events into deliveries and advance its cursor past
    them; the number of deliveries made, or None when another worker advanced the cursor first.

    Call it in a write transaction; the cursor moves only if the deliveries are committed with it.
    """
    found = event_log.page(conn, endpoint.org_id, after=endpoint.cursor, limit=limit)
    if not found:
        return 0
    # Claimed first, so that of two dispatchers racing on one endpoint exactly one goes on.
    moved = run(conn, _ADVANCE, {"_id": endpoint.id, "_from": endpoint.cursor, "cursor": found[-1].sequence})
    if moved.rowcount != 1:
        return None
    wanted = set(events_from_text(endpoint.events))
    return _add(conn, endpoint.id, [e for e in found if e.type in wanted], now)


def _add(conn: sa.Connection, webhook_id: int, chosen: Sequence[Event], now: datetime) -> int:
    if not chosen:
        return 0
    ids = _row_ids(conn, chosen)
    rows = [
        {"webhook_id": webhook_id, "event_id": ids[e.public_id], "state": DeliveryState.PENDING, "now": now}
        for e in chosen
    ]
    run_many(conn, _ADD_DELIVERY, rows)
    return len(rows)


_EVENT_ROW = Statement(sa.select(events.c.id).where(events.c.public_id == sa.bindparam("public_id")))


def _row_ids(conn: sa.Connection, chosen: Sequence[Event]) -> dict[str, int]:
    # Events carry their public id; the outbox refers to the row.
    return {e.public_id: int(run(conn, _EVENT_ROW, {"public_id": e.public_id}).scalar()) for e in chosen}


def replay(conn: sa.Connection, endpoint: Endpoint, *, after: int, limit: int, now: datetime) -> int:
    """Queue the endpoint's matching events after sequence `after` (up to those it already got, at
    most `limit`) for sending again; how many were queued."""
    wanted = set(endpoint.event_types)
    queued = 0
    position = after
    while position < endpoint.cursor and queued < limit:
        found = event_log.page(conn, endpoint.org_id, after=position, limit=500)
        found = [e for e in found if e.sequence <= endpoint.cursor]
        if not found:
            break
        position = found[-1].sequence
        chosen = [e for e in found if e.type in wanted][: limit - queued]
        queued += _add(conn, endpoint.id, chosen, now)
    return queued


# One due delivery per endpoint (the endpoints waiting longest first): an endpoint with a large
# backlog takes one place in the answer, not all of them.
_CANDIDATES = Statement(
    sa.select(
        sa.func.min(webhook_deliveries.c.id).label("id"), webhook_deliveries.c.webhook_id, webhooks.c.org_id
    )
    .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
    .where(
        webhook_deliveries.c.state == DeliveryState.PENDING.value,
        webhook_deliveries.c.due_at <= sa.bindparam("now", type_=_TIME),
        sa.or_(
            webhook_deliveries.c.lease_until.is_(None),
            webhook_deliveries.c.lease_until <= sa.bindparam("now", type_=_TIME),
        ),
        webhooks.c.enabled.is_(True),
    )
    .group_by(webhook_deliveries.c.webhook_id, webhooks.c.org_id)
    .order_by(sa.func.min(webhook_deliveries.c.due_at), webhook_deliveries.c.webhook_id)
    .limit(sa.bindparam("limit"))
)
_LEASE = Statement(
    webhook_deliveries.update()
    .where(
        webhook_deliveries.c.id == sa.bindparam("_id"),
        webhook_deliveries.c.state == DeliveryState.PENDING.value,
        sa.or_(
            webhook_deliveries.c.lease_until.is_(None),
            webhook_deliveries.c.lease_until <= sa.bindparam("now", type_=_TIME),
        ),
    )
    .values(lease_until=sa.bindparam("until", type_=_TIME), attempts=webhook_deliveries.c.attempts + 1)
    .returning(webhook_deliveries.c.attempts)
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A delivery due for an attempt, its endpoint's row id and organization."""

    id: int
    webhook_id: int
    org_id: int


def candidates(conn: sa.Connection, *, now: datetime, limit: int) -> list[Candidate]:
    """A pending, due, unleased delivery of each enabled endpoint that has one, the longest-waiting
    endpoints first."""
    return [record_of(Candidate, row) for row in run(conn, _CANDIDATES, {"now": now, "limit": limit}).all()]


def lease(conn: sa.Connection, delivery_id: int, *, now: datetime, until: datetime) -> int | None:
    """Take the delivery until `until`; its attempt number, or None when another worker has it.

    The attempt is counted here, so that a worker dying mid-send still used one.
    """
    row = run(conn, _LEASE, {"_id": delivery_id, "now": now, "until": until}).first()
    return int(row.attempts) if row is not None else None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What a worker needs to send a leased delivery."""

    webhook_id: int
    url: str
    secret: bytes
    public_id: str
    org_id: int
    event: Event


_EVENT_COLUMNS = [events.c[f] for f in Event.__dataclass_fields__]
_OUTGOING = Statement(
    sa.select(
        *(webhooks.c[f].label(f"wh_{f}") for f in ("id", "url", "secret", "public_id", "org_id")),
        *_EVENT_COLUMNS,
    )
    .select_from(webhook_deliveries)
    .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
    .join(events, events.c.id == webhook_deliveries.c.event_id)
    .where(webhook_deliveries.c.id == sa.bindparam("id"))
)


def outgoing(conn: sa.Connection, delivery_id: int) -> Outgoing | None:
    """The endpoint and event of a delivery (None once the endpoint was deleted)."""
    row = run(conn, _OUTGOING, {"id": delivery_id}).first()
    if row is None:
        return None
    event = record_of(Event, row)
    return Outgoing(row.wh_id, row.wh_url, bytes(row.wh_secret), row.wh_public_id, row.wh_org_id, event)


_LOG = Statement(
    webhook_attempts.insert().values(
        webhook_id=sa.bindparam("webhook_id"),
        delivery_id=sa.bindparam("delivery_id"),
        event_public_id=sa.bindparam("event_public_id"),
        attempt=sa.bindparam("attempt"),
        attempted_at=sa.bindparam("attempted_at", type_=_TIME),
        status_code=sa.bindparam("status_code"),
        error=sa.bindparam("error"),
        duration_ms=sa.bindparam("duration_ms"),
    )
)
_SETTLE = Statement(
    webhook_deliveries.update()
    .where(
        webhook_deliveries.c.id == sa.bindparam("_id"),
        webhook_deliveries.c.attempts == sa.bindparam("_attempt"),
    )
    .values(
        state=sa.bindparam("state"),
        due_at=sa.bindparam("due_at", type_=_TIME),
        lease_until=None,
    )
)
_SUCCEEDED = Statement(
    webhooks.update().where(webhooks.c.id == sa.bindparam("_id")).values(failing_since=None)
)
_FAILED = Statement(
    webhooks.update()
    .where(webhooks.c.id == sa.bindparam("_id"), webhooks.c.failing_since.is_(None))
    .values(failing_since=sa.bindparam("now", type_=_TIME))
)
_DISABLE = Statement(
    webhooks.update()
    .where(
        webhooks.c.id == sa.bindparam("_id"),
        webhooks.c.failing_since <= sa.bindparam("since", type_=_TIME),
        webhooks.c.enabled.is_(True),
    )
    .values(enabled=False)
)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's outcome, as the delivery log keeps it."""

    webhook_id: int
    delivery_id: int
    event_public_id: str
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


def finish(
    conn: sa.Connection,
    attempt: Attempt,
    *,
    succeeded: bool,
    retry_at: datetime | None,
    now: datetime,
    disable_before: datetime,
) -> bool:
    """Log the attempt and settle the delivery (delivered, due again at `retry_at`, or given up);
    True when the endpoint got disabled because it has been failing since before `disable_before`."""
    run(conn, _LOG, {f: getattr(attempt, f) for f in Attempt.__dataclass_fields__})
    if succeeded:
        state, due = DeliveryState.DELIVERED, now
    elif retry_at is not None:
        state, due = DeliveryState.PENDING, retry_at
    else:
        state, due = DeliveryState.GIVEN_UP, now
    # Under the lease it was sent with only: a takeover's outcome is the one that counts.
    run(
        conn,
        _SETTLE,
        {"_id": attempt.delivery_id, "_attempt": attempt.attempt, "state": state, "due_at": due},
    )
    if succeeded:
        run(conn, _SUCCEEDED, {"_id": attempt.webhook_id})
        return False
    run(conn, _FAILED, {"_id": attempt.webhook_id, "now": now})
    return run(conn, _DISABLE, {"_id": attempt.webhook_id, "since": disable_before}).rowcount == 1


_ATTEMPTS = Statement(
    sa.select(*(webhook_attempts.c[f] for f in ("id", *Attempt.__dataclass_fields__)))
    .where(
        webhook_attempts.c.webhook_id == sa.bindparam("webhook_id"),
        webhook_attempts.c.id < sa.bindparam("before"),
    )
    .order_by(webhook_attempts.c.id.desc())
    .limit(sa.bindparam("limit"))
)


@dataclass(frozen=True, slots=True)
class LoggedAttempt:
    """An attempt of the delivery log with its row id (its position for paging)."""

    id: int
    webhook_id: int
    delivery_id: int
    event_public_id: str
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


def attempts(conn: sa.Connection, webhook_id: int, *, before: int, limit: int) -> list[LoggedAttempt]:
    """The endpoint's logged attempts with a row id below `before`, newest first."""
    values = {"webhook_id": webhook_id, "before": before, "limit": limit}
    return [record_of(LoggedAttempt, row) for row in run(conn, _ATTEMPTS, values).all()]
