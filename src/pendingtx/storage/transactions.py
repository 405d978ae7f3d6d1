"""Queries for stored pending transactions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa

from pendingtx.domain.transactions import PendingTransaction
from pendingtx.storage.tables import transactions


def existing_external_ids(conn: sa.Connection, org_id: int, external_ids: Collection[str]) -> set[str]:
    """Which of these externalIds the organization already holds."""
    if not external_ids:
        return set()
    rows = conn.execute(
        sa.select(transactions.c.external_id).where(
            transactions.c.org_id == org_id, transactions.c.external_id.in_(list(external_ids))
        )
    )
    return {r[0] for r in rows}


def insert_transactions(
    conn: sa.Connection,
    *,
    org_id: int,
    job_id: int,
    records: Sequence[PendingTransaction],
    now: datetime,
) -> None:
    """Store validated transactions, created now."""
    if not records:
        return
    conn.execute(
        transactions.insert(),
        [
            {
                "org_id": org_id,
                "external_id": tx.external_id,
                "job_id": job_id,
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
                "created_at": now,
                "changed_at": now,
            }
            for tx in records
        ],
    )


def count_for_org(conn: sa.Connection, org_id: int) -> int:
    """How many transactions the organization holds."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(transactions).where(transactions.c.org_id == org_id)
        ).scalar_one()
    )
