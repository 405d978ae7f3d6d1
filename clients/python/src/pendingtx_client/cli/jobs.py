"""`pendingtx submit` and `pendingtx status`: send a file as jobs, follow them, and judge the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pendingtx_client import Client, JobRef, JobState, JobStatus
from pendingtx_client.cli import output
from pendingtx_client.cli.connection import ExitCode, client_options
from pendingtx_client.cli.records import Record, batches, read_records


@dataclass(frozen=True, slots=True)
class Submitted:
    """A job the server accepted: its reference, where its records start in the file, and how many."""

    ref: JobRef
    offset: int
    count: int


def submit_file(
    client: Client,
    path: Path,
    *,
    batch_size: int,
    transfers: bool,
    wait: bool,
    timeout: float,
    rejected_csv: Path | None = None,
) -> ExitCode:
    """Submit every record of the file, `batch_size` per job; print each job key as it is accepted.

    With `wait` and `rejected_csv`, the rejected records' results of every job go to that CSV.
    """
    records = read_records(path)
    jobs = submit_records(client, records, batch_size=batch_size, transfers=transfers)
    if not wait:
        return ExitCode.OK
    finished = wait_with_progress(client, jobs, total=len(records), timeout=timeout)
    output.show_results(finished)
    if rejected_csv is not None:
        from pendingtx_client.cli import resource

        resource.rejected_csv(client, [job.ref.key for job in jobs], rejected_csv)
    return outcome([job.status for job in finished])


def submit_records(
    client: Client, records: Sequence[Record], *, batch_size: int, transfers: bool
) -> list[Submitted]:
    send = client.transfer if transfers else client.submit
    jobs = []
    for offset, batch in batches(records, batch_size):
        ref = send(batch)
        click.echo(ref.key)
        jobs.append(Submitted(ref, offset, len(batch)))
    return jobs


def wait_with_progress(
    client: Client, jobs: Sequence[Submitted], *, total: int, timeout: float
) -> list[output.Finished]:
    """Wait for the jobs one after the other (within `timeout` seconds in all), showing processed/total."""
    clock = client_options().clock
    deadline = clock() + timeout
    progress = Progress(
        TextColumn("processed"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.stderr(),
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
        get_time=clock,
    )
    finished = []
    with progress:
        task = progress.add_task("processed", total=total)
        done = 0
        for job in jobs:

            def show(status: JobStatus, before: int = done) -> None:
                progress.update(task, completed=before + (status.processed_count or 0))
                progress.refresh()

            status = client.wait(job.ref.key, timeout=max(0.0, deadline - clock()), on_poll=show)
            finished.append(output.Finished(job.offset, status))
            done += job.count
    return finished


def show_status(client: Client, key: str, *, wait: bool, timeout: float) -> ExitCode:
    """Print the job's status (after waiting for its end with `wait`) and judge it."""
    status = client.wait(key, timeout=timeout) if wait else client.status(key)
    output.show_status(status)
    return outcome([status])


def outcome(statuses: Sequence[JobStatus]) -> ExitCode:
    """OK unless a job has ended with rejected records or failed; a job still running is not a failure."""
    if any(s.terminal and s.status is not JobState.COMPLETED for s in statuses):
        return ExitCode.REJECTED
    return ExitCode.OK
