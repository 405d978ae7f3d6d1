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
@click.option(
    "--rejected-csv",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="With --wait: write the rejected records' results (index within each job) to this CSV.",
)
@connection_options
def submit(
    *,
    file: Path,
    wait: bool,
    transfers: bool,
    batch_size: int,
    timeout: float,
    rejected_csv: Path | None,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Submit the records of FILE (a JSON array or object, or a CSV with a header row); print each job key.

    Exit status: 0 every job completed (without --wait: every job accepted), 1 a record was
    rejected or a job failed, 2 a usage, credentials or connection problem.
    """
    from pendingtx_client.cli import connection, jobs

    if rejected_csv is not None and not wait:
        raise click.UsageError("--rejected-csv needs --wait")
    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        code = jobs.submit_file(
            client,
            file,
            batch_size=batch_size,
            transfers=transfers,
            wait=wait,
            timeout=timeout,
            rejected_csv=rejected_csv,
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


@main.group()
def webhooks() -> None:
    """Register webhook endpoints, read their delivery log, replay events."""


_EVENT_TYPES = ("job.submitted", "job.started", "job.progress", "job.completed")


@webhooks.command("create")
@click.argument("target_url", metavar="URL")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(_EVENT_TYPES),
    help="An event type to receive (repeat for several; all when left out).",
)
@click.option("--description", help="A note for people (at most 256 characters).")
@connection_options
def webhooks_create(
    *,
    target_url: str,
    events: tuple[str, ...],
    description: str | None,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Register URL (https) for events; print the endpoint as JSON, with its secret (shown only now)."""
    from pendingtx_client.cli import connection
    from pendingtx_client.cli import webhooks as shown

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        shown.echo_json(client.create_webhook(target_url, events=events or None, description=description))


@webhooks.command("list")
@connection_options
def webhooks_list(*, url: str | None, app_key: str | None, app_secret: str | None) -> None:
    """Print the organization's endpoints as JSON, one per line."""
    from pendingtx_client.cli import connection
    from pendingtx_client.cli import webhooks as shown

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        for found in client.webhooks():
            shown.echo_json(found)


@webhooks.command("delete")
@click.argument("webhook_id", metavar="ID")
@connection_options
def webhooks_delete(*, webhook_id: str, url: str | None, app_key: str | None, app_secret: str | None) -> None:
    """Delete the endpoint ID with its pending deliveries. Exit status 1 when there is none such."""
    from pendingtx_client.cli import connection

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        client.delete_webhook(webhook_id)
    click.echo(f"deleted {webhook_id}")


@webhooks.command("deliveries")
@click.argument("webhook_id", metavar="ID")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Attempts to show."
)
@connection_options
def webhooks_deliveries(
    *, webhook_id: str, limit: int, url: str | None, app_key: str | None, app_secret: str | None
) -> None:
    """Print the endpoint's latest delivery attempts as JSON, newest first, one per line."""
    from itertools import islice

    from pendingtx_client.cli import connection
    from pendingtx_client.cli import webhooks as shown

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        for attempt in islice(client.webhook_deliveries(webhook_id, limit=min(limit, 100)), limit):
            shown.echo_json(attempt)


@webhooks.command("replay")
@click.argument("webhook_id", metavar="ID")
@click.option(
    "--after", required=True, type=click.IntRange(min=0), help="Re-send events after this sequence."
)
@connection_options
def webhooks_replay(
    *, webhook_id: str, after: int, url: str | None, app_key: str | None, app_secret: str | None
) -> None:
    """Send the endpoint's events after sequence --after again; print how many were queued."""
    from pendingtx_client.cli import connection

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        queued = client.replay_webhook(webhook_id, after=after)
    click.echo(f"queued {queued}")


@main.group("jobs")
def jobs_group() -> None:
    """List the organization's jobs, cancel one, read one's per-record results."""


@jobs_group.command("list")
@click.option("--status", "status_", help="A job status, e.g. 'Partially Completed' or Cancelled.")
@click.option("--kind", type=click.Choice(["create", "transfer", "modify"]), help="What the jobs do.")
@click.option(
    "--since", callback=eastern_moment, help="Submitted at or after (yyyy-MM-dd[THH:mm:ss.SSS], US Eastern)."
)
@click.option("--until", callback=eastern_moment, help="Submitted at or before (same format).")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many (newest first).")
@connection_options
def jobs_list(
    *,
    status_: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """List the organization's jobs, newest first: key, batch, kind, status and counts."""
    from pendingtx_client.cli import connection, resource

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        resource.list_jobs(client, status=status_, kind=kind, since=since, until=until, limit=limit)


@jobs_group.command("cancel")
@click.argument("key")
@connection_options
def jobs_cancel(*, key: str, url: str | None, app_key: str | None, app_secret: str | None) -> None:
    """Cancel the job KEY: a waiting job at once, a running one at its next chunk.

    Exit status 1 when the job had already finished (or is unknown).
    """
    from pendingtx_client.cli import connection, resource

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        resource.cancel_job(client, key)


@jobs_group.command("results")
@click.argument("key")
@click.option(
    "--outcome", type=click.Choice(["created", "rejected", "unprocessed"]), help="Only these records."
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write CSV (index,externalId,outcome,field,reason) to this file; - for standard output.",
)
@connection_options
def jobs_results(
    *,
    key: str,
    outcome: str | None,
    csv_file: Path | None,
    url: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Show what became of each record of the job KEY: created, rejected (and why) or unprocessed."""
    from pendingtx_client.cli import connection, resource

    creds = connection.resolve(url=url, app_key=app_key, app_secret=app_secret)
    with connection.reported_errors(creds), connection.connect(creds) as client:
        resource.show_results(client, key, outcome=outcome, csv_file=csv_file)


COMMANDS: tuple[click.Command, ...] = (submit, status, events, transactions, webhooks, jobs_group)
"""The client commands, for the server's `pendingtx` command line to include."""
