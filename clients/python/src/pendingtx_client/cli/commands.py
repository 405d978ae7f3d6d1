"""The client's command line: `pendingtx-client` (also part of the server's `pendingtx` command).

Only click is imported here; each command imports the SDK and rich when it runs, so that `--help`
and shell completion stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from pendingtx_client.cli.options import FORMATS, connection_options, eastern_moment

_F = TypeVar("_F", bound=Callable[..., object])


@click.group()
@click.version_option(package_name="pendingtx-client")
def main() -> None:
    """pendingtx-client: submit pending transactions, follow their jobs, read transactions."""


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--wait", is_flag=True, help="Show progress until every job ends, then every validation message."
)
@click.option("--transfers", is_flag=True, help="Submit to /v1/transfers (Full/Partial Transfer records).")
@click.option(
    "--batch-size",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Records per job; a larger file is sent as several jobs.",
)
@click.option(
    "--timeout",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds --wait waits in all.",
)
@connection_options
def submit(
    *,
    file: Path,
    wait: bool,
    transfers: bool,
    batch_size: int,
    timeout: float,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Submit the records of FILE (a JSON array or object, or a CSV with a header row); print each job key.

    Exit status: 0 every job completed (without --wait: every job accepted), 1 a record was
    rejected or a job failed, 2 a usage, credentials or connection problem.
    """
    from pendingtx_client.cli import connection, jobs

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        code = jobs.submit_file(
            client, file, batch_size=batch_size, transfers=transfers, wait=wait, timeout=timeout
        )
    sys.exit(code)


@main.command()
@click.argument("key")
@click.option("--wait", is_flag=True, help="Wait until the job ends.")
@click.option(
    "--timeout", default=600.0, show_default=True, type=click.FloatRange(min=0), help="Seconds --wait waits."
)
@connection_options
def status(
    *, key: str, wait: bool, timeout: float, url: str | None, app_key: str | None, app_secret: str | None
) -> None:
    """Show the status of the job KEY and every validation message.

    Exit status: 0 completed or still running, 1 some records rejected or the job failed, 2 a
    usage, credentials or connection problem.
    """
    from pendingtx_client.cli import connection, jobs

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        code = jobs.show_status(client, key, wait=wait, timeout=timeout)
    sys.exit(code)


@main.command()
@click.option(
    "--after",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only events after this sequence.",
)
@click.option("--key", help="Only the events of this job (with --follow, ends after its job.completed).")
@click.option(
    "--type",
    "type_",
    type=click.Choice(["job.submitted", "job.started", "job.progress", "job.completed"]),
    help="Only events of this type.",
)
@click.option("--follow", is_flag=True, help="Keep streaming new events as they happen (until Ctrl-C).")
@connection_options
def events(
    *,
    after: int,
    key: str | None,
    type_: str | None,
    follow: bool,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Print the organization's job events, one per line: sequence, type, job key, status, processed/records.

    With --follow, new events are printed as they happen (server-sent events, resumed after a
    dropped connection without a gap).
    """
    from pendingtx_client.cli import connection

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        for event in client.events(after=after, key=key, type=type_, follow=follow):
            click.echo(
                f"{event.sequence}\t{event.type}\t{event.key}\t{event.status.value}\t"
                f"{event.processed_count}/{event.record_count}"
            )
    sys.exit(0)


@main.group()
def transactions() -> None:
    """Read, change and cancel the organization's transactions."""


@transactions.command("list")
@click.option("--status", "status_", help="Active or Cancel.")
@click.option("--type", "type_", help="A transaction type, e.g. 'New Subscription'.")
@click.option("--product", help="productExternalId.")
@click.option("--investor", help="investorExternalId.")
@click.option(
    "--since", callback=eastern_moment, help="Created at or after (yyyy-MM-dd[THH:mm:ss.SSS], US Eastern)."
)
@click.option("--until", callback=eastern_moment, help="Created at or before (same format).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@connection_options
def transactions_list(
    *,
    status_: str | None,
    type_: str | None,
    product: str | None,
    investor: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """List every matching transaction, following the pages."""
    from pendingtx_client.cli import connection, listing

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        listing.list_transactions(
            client,
            status=status_,
            type_=type_,
            product=product,
            investor=investor,
            since=since,
            until=until,
            fmt=fmt,
        )


@transactions.command("get")
@click.argument("external_id", metavar="EXTERNAL_ID")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@connection_options
def transactions_get(
    *, external_id: str, fmt: str, url: str | None, app_key: str | None, app_secret: str | None
) -> None:
    """Show the transaction EXTERNAL_ID. Exit status 1 when the organization has none."""
    from pendingtx_client.cli import connection, listing

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        listing.show_transaction(client, external_id, fmt)


def _change_options(command: _F) -> _F:
    """--wait and --timeout of the commands that change a transaction, and the connection options."""
    command = connection_options(command)
    command = click.option(
        "--timeout",
        default=600.0,
        show_default=True,
        type=click.FloatRange(min=0),
        help="Seconds --wait waits.",
    )(command)
    return click.option("--wait", is_flag=True, help="Wait until the job ends and show its outcome.")(command)


@transactions.command("patch")
@click.argument("external_id", metavar="EXTERNAL_ID")
@click.option("--merge", metavar="JSON", help='A merge patch (RFC 7396), e.g. \'{"comments": "checked"}\'.')
@click.option(
    "--json-patch",
    metavar="JSON",
    help='A JSON Patch (RFC 6902), e.g. \'[{"op": "add", "path": "/comments", "value": "checked"}]\'.',
)
@_change_options
def transactions_patch(
    *,
    external_id: str,
    merge: str | None,
    json_patch: str | None,
    wait: bool,
    timeout: float,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Change the transaction EXTERNAL_ID with exactly one of --merge and --json-patch; print the job key.

    A worker applies the change; with --wait, exit status 1 when it was rejected.
    """
    from pendingtx_client.cli import changes, connection

    body, is_merge = changes.patch_body(merge, json_patch)
    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        code = changes.send_change(client, external_id, body, merge=is_merge, wait=wait, timeout=timeout)
    sys.exit(code)


@transactions.command("cancel")
@click.argument("external_id", metavar="EXTERNAL_ID")
@_change_options
def transactions_cancel(
    *,
    external_id: str,
    wait: bool,
    timeout: float,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Cancel the transaction EXTERNAL_ID (a merge patch {"status": "Cancel"}); print the job key.

    With --wait, exit status 1 when the cancel was rejected (e.g. already cancelled).
    """
    from pendingtx_client.cli import changes, connection

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        code = changes.send_change(
            client, external_id, {"status": "Cancel"}, merge=True, wait=wait, timeout=timeout
        )
    sys.exit(code)


COMMANDS: tuple[click.Command, ...] = (submit, status, events, transactions)
"""The client commands, for the server's `pendingtx` command line to include."""
