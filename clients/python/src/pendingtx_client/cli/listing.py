"""`pendingtx transactions list` and `get`: filters from options, every page, in the chosen format."""

from __future__ import annotations

from pendingtx_client import Client
from pendingtx_client.cli import output


def list_transactions(
    client: Client,
    *,
    status: str | None,
    type_: str | None,
    product: str | None,
    investor: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
) -> int:
    """Write every matching transaction; returns how many there were."""
    found = client.transactions(
        status=status,
        type=type_,
        product_external_id=product,
        investor_external_id=investor,
        create_start_date=since,
        create_end_date=until,
    )
    return output.write_transactions(found, fmt)


def show_transaction(client: Client, external_id: str, fmt: str) -> None:
    """Write one transaction: every member as a table, a JSON object, or a CSV header and row."""
    found = client.get_transaction(external_id)
    output.write_transaction(found, fmt)
