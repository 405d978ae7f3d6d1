"""Listing the caller's transactions with filters and cursor paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pendingtx import errors
from pendingtx.domain import listing
from pendingtx.domain.cursors import ListKind
from pendingtx.domain.times import to_eastern_iso
from pendingtx.domain.transactions import Problem, to_json
from pendingtx.services.authentication import Caller
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.server_keys import ServerKeys
from pendingtx.storage.unit_of_work import UnitOfWork

Q = TypeVar("Q")


class Page(Protocol):
    """A page of rows as storage reads it for any list (rows with ids, neighbours, a count)."""

    @property
    def rows(self) -> Sequence[Any]: ...
    @property
    def more_after(self) -> bool: ...
    @property
    def more_before(self) -> bool: ...
    @property
    def total_count(self) -> int: ...


def checked(query: Q | list[Problem]) -> Q:
    """The parsed list query, or a 400 naming each problem of the query string."""
    if isinstance(query, list):
        raise errors.ValidationFailed(errors=[errors.ErrorDetail(p.field, "query", p.reason) for p in query])
    return query


def paging_of(query: Any, page: Page, **options: Any) -> listing.Paging:
    """The paging block of `page` (options as `domain.listing.paging_for` takes them)."""
    return listing.paging_for(
        query,
        first_id=page.rows[0].id if page.rows else None,
        last_id=page.rows[-1].id if page.rows else None,
        has_more_after=page.more_after,
        has_more_before=page.more_before,
        total_count=page.total_count,
        **options,
    )


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of transactions and how to reach its neighbours."""

    rows: list[tx_repo.StoredTransaction]
    paging: listing.Paging


def transaction_json(stored: tx_repo.StoredTransaction) -> dict[str, object]:
    """The client's view of a stored transaction, with the server-set dates in US Eastern time."""
    return {
        **to_json(stored.tx),
        "createDate": to_eastern_iso(stored.created_at),
        "changeDate": to_eastern_iso(stored.changed_at),
    }


def list_transactions(
    uow: UnitOfWork, caller: Caller, params: Sequence[tuple[str, str]], *, keys: ServerKeys
) -> Listing:
    """The page the query parameters ask for, only ever from the caller's organization."""
    cursors = keys.cursor_key().for_listing(ListKind.TRANSACTIONS, caller.org_id)
    query = checked(listing.parse_list_query(params, cursors))
    with uow.read() as conn:
        page = tx_repo.list_page(conn, caller.org_id, query)
    paging = paging_of(query, page, cursors=cursors, params=params)
    return Listing(page.rows, paging)
