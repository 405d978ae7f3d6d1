"""How the webhook commands print: one compact JSON object per line, for people and for `jq` alike."""

from __future__ import annotations

import json
from typing import Any

import click


def echo_json(value: Any) -> None:
    """Print the value as one line of JSON."""
    click.echo(json.dumps(value, ensure_ascii=False))
