"""`pendingtx transactions patch` and `cancel`: send a change of one transaction as a job, and judge it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click
import msgspec

from pendingtx_client import Client
from pendingtx_client.cli import jobs
from pendingtx_client.cli.connection import ExitCode

# Numbers are kept digit for digit (a Decimal), never passed through a float.
_json = msgspec.json.Decoder(float_hook=Decimal)


def patch_body(merge: str | None, json_patch: str | None) -> tuple[Any, bool]:
    """(the patch, whether it is a merge patch) from exactly one of the two options' JSON texts."""
    if (merge is None) == (json_patch is None):
        raise click.UsageError("give exactly one of --merge JSON and --json-patch JSON")
    option, text = ("--merge", merge) if merge is not None else ("--json-patch", json_patch)
    assert text is not None
    try:
        body = _json.decode(text)
    except msgspec.DecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    wanted = dict if merge is not None else list
    if not isinstance(body, wanted):
        shape = "an object" if merge is not None else "an array of operations"
        raise click.BadParameter(f"must be {shape}", param_hint=option)
    return body, merge is not None


def send_change(
    client: Client, external_id: str, body: Any, *, merge: bool, wait: bool, timeout: float
) -> ExitCode:
    """Send the patch and print its job key; with `wait`, show the job's outcome and judge it."""
    ref = client.patch(external_id, body, merge=merge)
    click.echo(ref.key)
    if not wait:
        return ExitCode.OK
    return jobs.show_status(client, ref.key, wait=True, timeout=timeout)
