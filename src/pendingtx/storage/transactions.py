"""Queries for stored pending transactions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pendingtx.domain.listing import ListQuery
from pendingtx.domain.transactions import PendingTransaction, TransactionStatus, TransactionType
from pendingtx.storage.bulk import insert_rows
from pendingtx.storage.direct import DirectStatement, run
from pendingtx.storage.tables import transactions

_MILLISECOND = timedelta(milliseconds=1)
# The start of the last millisecond a datetime can hold: one more millisecond would overflow.
_LAST_MILLISECOND = datetime.max.replace(microsecond=0, tzinfo=UTC) + timedelta(milliseconds=999)


def existing_external_ids(conn: sa.Connection, org_id: int, external_ids: Collection[str]) -> set[str]:
    """Which of these externalIds the organization already holds."""
    if not external_ids:
        return set()
    if conn.dialect.name == "sqlite":
        # The ids travel as one JSON array: no statement to expand per call, run on the driver.
        found = run(
            conn, _EXISTING_SQLITE, {"org_id": org_id, "ids": msgspec.json.encode(list(external_ids))}
        )
        return {str(r[0]) for r in found.fetchall()}
    rows = conn.execute(_existing_statement(conn.dialect.name), {"org_id": org_id, "ids": list(external_ids)})
    return {str(r[0]) for r in rows}


_EXISTING_SQLITE = DirectStatement(
    lambda _: sa.select(transactions.c.external_id).where(
        transactions.c.org_id == sa.bindparam("org_id"),
        transactions.c.external_id.in_(
            sa.select(sa.column("value", sa.String)).select_from(sa.func.json_each(sa.bindparam("ids")))
        ),
    )
)


@cache
def _existing_statement(dialect: str) -> sa.Select[Any]:
    if dialect == "postgresql":
        # One unique-key probe per id. The plain IN form is planned from statistics, and before
        # the first ANALYZE of a freshly filled table PostgreSQL scans the organization's every row
        # for it instead: a large first import slowed down with each chunk.
        ids = (
            sa.func.unnest(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String)))
            .table_valued("id")
            .render_derived()
        )
        held = (
            sa.select(sa.literal(1))
            .where(transactions.c.org_id == sa.bindparam("org_id"), transactions.c.external_id == ids.c.id)
            .limit(1)
            .lateral()
        )
        return sa.select(ids.c.id).select_from(ids.join(held, sa.true()))
    return sa.select(transactions.c.external_id).where(
        transactions.c.org_id == sa.bindparam("org_id"),
        transactions.c.external_id.in_(sa.bindparam("ids", expanding=True)),
    )


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
    """Store rows made by `transaction_rows` (of one job or of several) in one statement."""
    insert_rows(conn, transactions, _INSERTED, rows)


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


def count_for_org(conn: sa.Connection, org_id: int) -> int:
    """How many transactions the organization holds."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(transactions).where(transactions.c.org_id == org_id)
        ).scalar_one()
    )


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


def _stored(row: sa.RowMapping) -> StoredTransaction:
    tx = PendingTransaction(
        external_id=row["external_id"],
        type=TransactionType(row["type"]),
        status=TransactionStatus(row["status"]),
        product_external_id=row["product_external_id"],
        investor_external_id=row["investor_external_id"],
        contact_external_id=row["contact_external_id"],
        to_product_external_id=row["to_product_external_id"],
        to_investor_external_id=row["to_investor_external_id"],
        amount=row["amount"],
        units=row["units"],
        currency=row["currency"],
        trade_date=row["trade_date"],
        settlement_date=row["settlement_date"],
        comments=row["comments"],
    )
    return StoredTransaction(row["id"], tx, row["created_at"], row["changed_at"])


def find_transaction(
    conn: sa.Connection, org_id: int, external_id: str, *, for_update: bool = False
) -> StoredTransaction | None:
    """The organization's transaction with this externalId (locked for update on PostgreSQL)."""
    query = sa.select(transactions).where(
        transactions.c.org_id == org_id, transactions.c.external_id == external_id
    )
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return _stored(row) if row is not None else None


def update_transaction(conn: sa.Connection, row_id: int, tx: PendingTransaction, *, now: datetime) -> None:
    """Store the modified values of a transaction; its externalId and createDate never change."""
    values = _columns(tx)
    del values["external_id"]
    conn.execute(transactions.update().where(transactions.c.id == row_id).values(**values, changed_at=now))


def _filters(org_id: int, query: ListQuery) -> list[sa.ColumnElement[bool]]:
    t = transactions.c
    conditions: list[sa.ColumnElement[bool]] = [t.org_id == org_id]
    equalities = (
        (t.status, query.status),
        (t.type, query.type),
        (t.external_id, query.external_id),
        (t.product_external_id, query.product_external_id),
        (t.investor_external_id, query.investor_external_id),
        (t.contact_external_id, query.contact_external_id),
    )
    conditions += [column == str(value) for column, value in equalities if value is not None]
    ranges = (
        (t.created_at, query.create_start, query.create_end),
        (t.changed_at, query.change_start, query.change_end),
    )
    for column, start, end in ranges:
        if start is not None:
            conditions.append(column >= start)
        if end is not None and end < _LAST_MILLISECOND:
            # Bounds are inclusive to the millisecond the client can write; stored times carry microseconds.
            conditions.append(column < end + _MILLISECOND)
        # An end in the last millisecond of year 9999 (or past it) bounds nothing: no time comes after.
    return conditions


def list_page(conn: sa.Connection, org_id: int, query: ListQuery) -> Page:
    """A page of the organization's transactions in creation order, after or before a cursor."""
    where = _filters(org_id, query)
    t = transactions.c
    total = conn.execute(sa.select(sa.func.count()).select_from(transactions).where(*where)).scalar_one()
    page = sa.select(transactions).where(*where).limit(query.limit + 1)
    if query.before is not None:
        found = conn.execute(page.where(t.id < query.before).order_by(t.id.desc())).mappings().all()
        rows = [_stored(r) for r in reversed(found[: query.limit])]
        more_before = len(found) > query.limit
        more_after = bool(rows) and _exists(conn, where, t.id > rows[-1].id)
    else:
        if query.after is not None:
            page = page.where(t.id > query.after)
        found = conn.execute(page.order_by(t.id)).mappings().all()
        rows = [_stored(r) for r in found[: query.limit]]
        more_after = len(found) > query.limit
        more_before = bool(rows) and _exists(conn, where, t.id < rows[0].id)
    return Page(rows, int(total), more_after, more_before)


def _exists(conn: sa.Connection, where: list[sa.ColumnElement[bool]], bound: sa.ColumnElement[bool]) -> bool:
    return bool(conn.execute(sa.select(sa.exists().where(*where, bound))).scalar())
