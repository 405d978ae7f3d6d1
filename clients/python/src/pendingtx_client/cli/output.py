"""How the client commands show jobs and transactions: rich tables for people, JSON and CSV for programs."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec
from rich.console import Console
from rich.table import Table

from pendingtx_client import JobStatus, Transaction

# The contract's order of a transaction's members (section 5), for CSV columns.
TRANSACTION_COLUMNS = (
    "externalId", "type", "status", "productExternalId", "investorExternalId", "contactExternalId",
    "toProductExternalId", "toInvestorExternalId", "amount", "units", "currency", "tradeDate",
    "settlementDate", "comments", "createDate", "changeDate",
)  # fmt: skip
_TABLE_COLUMNS = (
    "externalId", "type", "status", "productExternalId", "investorExternalId", "amount", "units",
    "currency", "tradeDate",
)  # fmt: skip

# Amounts and units as JSON numbers with exactly their digits.
_json = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True, slots=True)
class Finished:
    """A job's final status, and where its records start in the submitted file."""

    offset: int
    status: JobStatus


# Tables written to a file or a pipe (not a terminal, no $COLUMNS) are laid out this wide, not 80.
PIPE_WIDTH = 200


def stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    return console


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def show_status(status: JobStatus) -> None:
    """A job's status, counts and every validation message."""
    out = stdout()
    out.print(f"Status:   {status.status.value}", markup=False)
    out.print(f"Batch:    {status.batch_id}", markup=False)
    out.print(f"Message:  {status.message}", markup=False)
    if status.record_count is not None:
        out.print(
            f"Records:  {status.processed_count} of {status.record_count} processed, "
            f"{status.failed_count} rejected",
            markup=False,
        )
    if status.validation_messages or status.details:
        out.print(validation_table([Finished(0, status)]))


def validation_table(finished: Sequence[Finished]) -> Table:
    """One row per problem: the job's batch, the record's position in the file, its externalId and why."""
    table = Table("Batch", "Record", "externalId", "Field", "Reason", title="Validation messages")
    for job in finished:
        status = job.status
        for detail in status.details:
            position = "" if detail.index is None else str(job.offset + detail.index)
            table.add_row(status.batch_id, position, detail.external_id or "", detail.field, detail.reason)
        if not status.details:  # a server that sends only the messages
            for message in status.validation_messages:
                table.add_row(status.batch_id, "", "", "", message)
    return table


def show_results(finished: Sequence[Finished]) -> None:
    """Every validation message, then one line per job and the totals."""
    out = stdout()
    if any(job.status.details or job.status.validation_messages for job in finished):
        out.print(validation_table(finished))
    for job in finished:
        out.print(f"batch {job.status.batch_id}: {job.status.message}", markup=False)
    records = sum(job.status.record_count or 0 for job in finished)
    rejected = sum(job.status.failed_count or 0 for job in finished)
    out.print(f"{len(finished)} job(s), {records} record(s), {rejected} rejected", markup=False)


def _row(tx: Transaction) -> dict[str, object]:
    """Text cells; amounts and units with exactly their digits."""
    return {name: str(value) if not isinstance(value, str) else value for name, value in tx.to_json().items()}


def write_transactions(transactions: Iterable[Transaction], fmt: str) -> int:
    """Write the transactions to standard output as a table, JSON or CSV; returns how many."""
    if fmt == "json":
        return _write_json(transactions)
    if fmt == "csv":
        return _write_csv(transactions)
    rows = [_row(tx) for tx in transactions]
    table = Table(*_TABLE_COLUMNS)
    for row in rows:
        table.add_row(*(str(row.get(name, "")) for name in _TABLE_COLUMNS))
    stdout().print(table)
    return len(rows)


def write_transaction(tx: Transaction, fmt: str) -> None:
    """One transaction on standard output: a member-per-row table, a JSON object, or CSV."""
    if fmt == "json":
        sys.stdout.write(_json.encode(tx.to_json()).decode() + "\n")
    elif fmt == "csv":
        _write_csv([tx])
    else:
        table = Table("Member", "Value", show_header=False)
        for name, value in _row(tx).items():
            table.add_row(name, str(value))
        stdout().print(table)


def _write_json(transactions: Iterable[Transaction]) -> int:
    count = 0
    out = sys.stdout
    out.write("[")
    for tx in transactions:
        out.write(("," if count else "") + "\n  " + _json.encode(tx.to_json()).decode())
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def _write_csv(transactions: Iterable[Transaction]) -> int:
    writer = csv.DictWriter(sys.stdout, fieldnames=TRANSACTION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for tx in transactions:
        writer.writerow(_row(tx))
        count += 1
    return count
