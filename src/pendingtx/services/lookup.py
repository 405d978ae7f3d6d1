"""Reading one of the caller's transactions by its externalId (GET /v1/transactions/{externalId})."""

from __future__ import annotations

from pendingtx import errors
from pendingtx.services.authentication import Caller
from pendingtx.services.listing import transaction_json
from pendingtx.storage import transactions as tx_repo
from pendingtx.storage.unit_of_work import UnitOfWork


def get_transaction(uow: UnitOfWork, caller: Caller, external_id: str) -> dict[str, object]:
    """The transaction as the listing shows it; 404 when the caller's organization has no such externalId.

    Another organization's externalId is a 404 too: whether it exists elsewhere is never revealed.
    """
    with uow.read() as conn:
        found = tx_repo.find_transaction(conn, caller.org_id, external_id)
    if found is None:
        raise errors.NotFound(f"No transaction with externalId {external_id}")
    return transaction_json(found)
