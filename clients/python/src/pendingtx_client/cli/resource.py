"""`pendingtx jobs list|cancel|results`: the organization's jobs as a resource (contract 7.4)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

import click

from pendingtx_client import Client, JobSummary, RecordResult
from pendingtx_client._operations import CsvWriter
from pendingtx_client.cli import output


def list_jobs(
    client: Client,
    *,
    status: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
) -> int:
    """One line per job, newest first: key, batch, kind, status, processed of records, rejected."""
    found: Iterable[JobSummary] = client.jobs(
        status=status, kind=kind, submitted_start=since, submitted_end=until
    )
    out = output.stdout()
    shown = 0
    for job in found:
        if limit is not None and shown >= limit:
            break
        out.print(
            f"{job.key}  batch {job.batch_id}  {job.kind:<8}  {job.status.value:<19}  "
            f"{job.processed_count} of {job.record_count} processed, {job.failed_count} rejected",
            markup=False,
        )
        shown += 1
    return shown


def cancel_job(client: Client, key: str) -> None:
    """Cancel the job and show its status as it stands."""
    output.show_status(client.cancel(key))


def show_results(client: Client, key: str, *, outcome: str | None, csv_file: Path | None) -> int:
    """Every record's outcome: as CSV to `csv_file` ("-" for standard output), else one line each."""
    rows = client.results(key, outcome=outcome)
    if csv_file is not None:
        return write_csv(rows, csv_file)
    out = output.stdout()
    shown = 0
    for row in rows:
        reasons = "; ".join(f"{p.field}: {p.reason}" if p.field else p.reason for p in row.problems)
        out.print(f"[{row.index}] {row.external_id or '?'}  {row.outcome}  {reasons}".rstrip(), markup=False)
        shown += 1
    return shown


def write_csv(rows: Iterable[RecordResult], path: Path) -> int:
    """Write results as the server's CSV to `path` ("-": standard output); returns how many records."""
    if str(path) == "-":
        return _write(rows, sys.stdout)
    with path.open("w", newline="", encoding="utf-8") as file:
        return _write(rows, file)


def _write(rows: Iterable[RecordResult], file: IO[str]) -> int:
    writer = CsvWriter(file)
    for row in rows:
        writer.write(row)
    return writer.records


def rejected_csv(client: Client, keys: Sequence[str], path: Path) -> int:
    """The rejected records of every job, in one CSV (the jobs one after the other); how many."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = CsvWriter(file)
        for key in keys:
            for row in client.results(key, outcome="rejected"):
                writer.write(row)
    click.echo(f"{writer.records} rejected record(s) written to {path}", err=True)
    return writer.records
