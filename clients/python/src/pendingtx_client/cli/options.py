"""Click options shared by the client commands; cheap to import (no rich, no HTTP)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import click

FORMATS = ("table", "json", "csv")
_F = TypeVar("_F", bound=Callable[..., object])
_EASTERN_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{3})?)?", re.ASCII)


def connection_options(command: _F) -> _F:
    """--url, --app-key and --app-secret, each also read from its PENDINGTX_* environment variable."""
    decorators = (
        click.option(
            "--url", envvar="PENDINGTX_URL", show_envvar=True, help="Server root, e.g. http://127.0.0.1:8000."
        ),
        click.option(
            "--app-key", envvar="PENDINGTX_APP_KEY", show_envvar=True, help="The application's AppKey."
        ),
        click.option(
            "--app-secret",
            envvar="PENDINGTX_APP_SECRET",
            show_envvar=True,
            help="The AppSecret (prefer the variable or the profile file: options show in process lists).",
        ),
    )
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def eastern_moment(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check a date `yyyy-MM-dd` or date-time `yyyy-MM-ddTHH:mm:ss[.SSS]` (US Eastern time); kept as text."""
    if value is None:
        return None
    if _EASTERN_MOMENT.fullmatch(value):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise click.BadParameter(f"{value!r} is not a date yyyy-MM-dd or a date-time yyyy-MM-ddTHH:mm:ss.SSS")
