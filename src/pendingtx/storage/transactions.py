"""Queries for stored pending transactions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from pendingtx.domain.listing import ListQuery
from pendingtx.domain.transactions import PendingTransaction
from pendingtx.storage.driver import Statement, dialect_for, insert_rows, record_of, run
from pendingtx.storage.tables import transactions

_MILLISECOND = timedelta(milliseconds=1)
# The start of the last millisecond a datetime can hold: one more millisecond would overflow.
_LAST_MILLISECOND = datetime.max.replace(microsecond=0, tzinfo=UTC) + timedelta(milliseconds=999)


def _held(item: sa.ColumnElement[Any]) -> sa.Select[Any]:
    return sa.select(transactions.c.id).where(
        transactions.c.org_id == sa.bindparam("org_id"), transactions.c.external_id == item
    )


_EXISTING = Statement(lambda dialect: dialect.found_items("ids", _held))


def existing_external_ids(conn: sa.Connection, org_id: int, external_ids: Collection[str]) -> set[str]:
    """Which of these externalIds the organization already holds."""
    if not external_ids:
        return set()
    ids = dialect_for(conn).list_value(external_ids)
    return {str(row.value) for row in run(conn, _EXISTING, {"org_id": org_id, "ids": ids}).all()}


_INSERTED = (
    "org_id", "job_id", "created_at", "changed_at", "external_id", "type", "status",
    "product_external_id", "investor_external_id", "contact_external_id", "to_product_external_id",
    "to_investor_external_id", "amount", "units", "currency", "trade_date", "settlement_date", "comments",
)  # fmt: skip


def transaction_rows(
    *, org_id: int, job_id: int, records: Sequence[PendingTransaction], now: datetime
) -> list[tuple[object, ...]]:
    """Validated transactions as rows for `insert_transaction_rows`, created now."""
    return [
        (
            org_id,
            job_id,
            now,
            now,
            tx.external_id,
            tx.type.value,
            tx.status.value,
            tx.product_external_id,
            tx.investor_external_id,
            tx.contact_external_id,
            tx.to_product_external_id,
            tx.to_investor_external_id,
            tx.amount,
            tx.units,
            tx.currency,
            tx.trade_date,
            tx.settlement_date,
            tx.comments,
        )
        for tx in records
    ]


def insert_transaction_rows(conn: sa.Connection, rows: Sequence[Sequence[object]]) -> None:
    """Store rows made by `transaction_rows` (of one job or of several) in one statement, as the
    transaction's last reads are done: they may go with its commit."""
    insert_rows(conn, transactions, _INSERTED, rows, with_commit=True)


def insert_transactions(
    conn: sa.Connection,
    *,
    org_id: int,
    job_id: int,
    records: Sequence[PendingTransaction],
    now: datetime,
) -> None:
    """Store validated transactions, created now."""
    insert_transaction_rows(conn, transaction_rows(org_id=org_id, job_id=job_id, records=records, now=now))


def _columns(tx: PendingTransaction) -> dict[str, object]:
    return {
        "external_id": tx.external_id,
        "type": tx.type.value,
        "status": tx.status.value,
        "product_external_id": tx.product_external_id,
        "investor_external_id": tx.investor_external_id,
        "contact_external_id": tx.contact_external_id,
        "to_product_external_id": tx.to_product_external_id,
        "to_investor_external_id": tx.to_investor_external_id,
        "amount": tx.amount,
        "units": tx.units,
        "currency": tx.currency,
        "trade_date": tx.trade_date,
        "settlement_date": tx.settlement_date,
        "comments": tx.comments,
    }


@dataclass(frozen=True, slots=True)
class StoredTransaction:
    """A transaction as stored: the domain value plus its sequence number and server dates."""

    id: int
    tx: PendingTransaction
    created_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, and whether rows exist beyond either end of it."""

    rows: list[StoredTransaction]
    total_count: int
    more_after: bool
    more_before: bool


def _stored(row: Any) -> StoredTransaction:
    # The columns are named after the fields of PendingTransaction.
    return StoredTransaction(row.id, record_of(PendingTransaction, row), row.created_at, row.changed_at)


_ONE = sa.select(transactions).where(
    transactions.c.org_id == sa.bindparam("org_id"), transactions.c.external_id == sa.bindparam("external_id")
)
_FIND = Statement(_ONE)
_FIND_FOR_UPDATE = Statement(_ONE.with_for_update())


def find_transaction(
    conn: sa.Connection, org_id: int, external_id: str, *, for_update: bool = False
) -> StoredTransaction | None:
    """The organization's transaction with this externalId (locked for update on PostgreSQL)."""
    statement = _FIND_FOR_UPDATE if for_update else _FIND
    row = run(conn, statement, {"org_id": org_id, "external_id": external_id}).first()
    return _stored(row) if row is not None else None


_CHANGED = tuple(name for name in _INSERTED if name not in ("org_id", "job_id", "created_at", "external_id"))
_UPDATE = Statement(
    transactions.update()
    .where(transactions.c.id == sa.bindparam("row_id"))
    .values({name: sa.bindparam(f"new_{name}", type_=transactions.c[name].type) for name in _CHANGED})
)


def update_transaction(conn: sa.Connection, row_id: int, tx: PendingTransaction, *, now: datetime) -> None:
    """Store the modified values of a transaction; its externalId and createDate never change."""
    values = {**_columns(tx), "changed_at": now}
    run(conn, _UPDATE, {"row_id": row_id, **{f"new_{name}": values[name] for name in _CHANGED}})


# Each filter of a listing: its name in the query, and its condition on a parameter of that name.
_FILTERS: dict[str, Any] = {
    "status": lambda t: t.status == sa.bindparam("status"),
    "type": lambda t: t.type == sa.bindparam("type"),
    "external_id": lambda t: t.external_id == sa.bindparam("external_id"),
    "product_external_id": lambda t: t.product_external_id == sa.bindparam("product_external_id"),
    "investor_external_id": lambda t: t.investor_external_id == sa.bindparam("investor_external_id"),
    "contact_external_id": lambda t: t.contact_external_id == sa.bindparam("contact_external_id"),
    "create_start": lambda t: t.created_at >= sa.bindparam("create_start", type_=t.created_at.type),
    "create_end": lambda t: t.created_at < sa.bindparam("create_end", type_=t.created_at.type),
    "change_start": lambda t: t.changed_at >= sa.bindparam("change_start", type_=t.changed_at.type),
    "change_end": lambda t: t.changed_at < sa.bindparam("change_end", type_=t.changed_at.type),
}


def _filter_values(org_id: int, query: ListQuery) -> dict[str, Any]:
    values: dict[str, Any] = {
        "org_id": org_id,
        "status": query.status and query.status.value,
        "type": query.type and query.type.value,
        "external_id": query.external_id,
        "product_external_id": query.product_external_id,
        "investor_external_id": query.investor_external_id,
        "contact_external_id": query.contact_external_id,
        "create_start": query.create_start,
        "create_end": _exclusive_end(query.create_end),
        "change_start": query.change_start,
        "change_end": _exclusive_end(query.change_end),
    }
    return {name: value for name, value in values.items() if value is not None}


def _exclusive_end(end: datetime | None) -> datetime | None:
    # Bounds are inclusive to the millisecond the client can write; stored times carry microseconds.
    # An end in the last millisecond of year 9999 (or past it) bounds nothing: no time comes after.
    if end is None or end >= _LAST_MILLISECOND:
        return None
    return end + _MILLISECOND


@dataclass(frozen=True, slots=True)
class _Listing:
    """The statements of a listing with one set of filters: each compiled once per dialect."""

    total: Statement
    forward: Statement
    backward: Statement
    any_after: Statement
    any_before: Statement


@lru_cache(maxsize=1024)
def _listing(filters: frozenset[str]) -> _Listing:
    t = transactions.c
    where = [t.org_id == sa.bindparam("org_id"), *(_FILTERS[name](t) for name in sorted(filters))]
    page = sa.select(transactions).where(*where).limit(sa.bindparam("limit"))
    cursor: sa.BindParameter[int] = sa.bindparam("cursor", type_=sa.BigInteger)
    return _Listing(
        total=Statement(sa.select(sa.func.count().label("rows")).select_from(transactions).where(*where)),
        forward=Statement(page.where(t.id > cursor).order_by(t.id)),
        backward=Statement(page.where(t.id < cursor).order_by(t.id.desc())),
        # The next id either way, not EXISTS: PostgreSQL's generic plan for EXISTS scans the whole
        # organization when there is none (every first and last page: 100 ms at a million rows);
        # this one walks the index of the filter.
        any_after=Statement(sa.select(t.id).where(*where, t.id > cursor).order_by(t.id).limit(1)),
        any_before=Statement(sa.select(t.id).where(*where, t.id < cursor).order_by(t.id.desc()).limit(1)),
    )


def list_page(conn: sa.Connection, org_id: int, query: ListQuery) -> Page:
    """A page of the organization's transactions in creation order, after or before a cursor."""
    values = _filter_values(org_id, query)
    listing = _listing(frozenset(values) - {"org_id"})
    # A later page carries the count its listing's first page took: at a million rows, counting
    # them costs far more than reading a page.
    total = query.total if query.total is not None else int(run(conn, listing.total, values).scalar())
    window = {**values, "limit": query.limit + 1}
    if query.before is not None:
        found = run(conn, listing.backward, {**window, "cursor": query.before}).all()
        rows = [_stored(r) for r in reversed(found[: query.limit])]
        more_before = len(found) > query.limit
        more_after = bool(rows) and bool(
            run(conn, listing.any_after, {**values, "cursor": rows[-1].id}).scalar()
        )
    else:
        found = run(conn, listing.forward, {**window, "cursor": query.after or 0}).all()
        rows = [_stored(r) for r in found[: query.limit]]
        more_after = len(found) > query.limit
        more_before = bool(rows) and bool(
            run(conn, listing.any_before, {**values, "cursor": rows[0].id}).scalar()
        )
    return Page(rows, total, more_after, more_before)
