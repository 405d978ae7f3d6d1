"""The client's command line: `pendingtx-client` (also part of the server's `pendingtx` command).

Only click is imported here; each command imports the SDK and rich when it runs, so that `--help`
and shell completion stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pendingtx_client.cli.options import FORMATS, connection_options, eastern_moment


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


@main.group()
def transactions() -> None:
    """Read the organization's transactions."""


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


COMMANDS: tuple[click.Command, ...] = (submit, status, transactions)
"""The client commands, for the server's `pendingtx` command line to include."""
