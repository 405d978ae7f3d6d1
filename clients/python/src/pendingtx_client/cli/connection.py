"""Where the client commands find the server and the application's credentials, and exit codes.

Each of url, app key and app secret comes from its flag, else its environment variable, else the
profile file (`$PENDINGTX_PROFILE`, default `~/.config/pendingtx/profile.toml`). The secret is
never printed, not even in an error message.
"""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import click
import httpx

from pendingtx_client import (
    ApiError,
    AuthenticationError,
    Client,
    ConnectionFailed,
    PendingTxError,
    PermissionDenied,
)

PROFILE_ENV = "PENDINGTX_PROFILE"
ENV_NAMES = {"url": "PENDINGTX_URL", "app_key": "PENDINGTX_APP_KEY", "app_secret": "PENDINGTX_APP_SECRET"}
FLAG_NAMES = {"url": "--url", "app_key": "--app-key", "app_secret": "--app-secret"}


class ExitCode(IntEnum):
    """What a client command's exit status means."""

    OK = 0  # every job completed (or, without --wait, every job was accepted)
    REJECTED = 1  # a record was rejected, a job failed, or the server refused a request
    USAGE = 2  # bad usage or configuration (credentials, file), or the server could not be reached


class CommandFailed(click.ClickException):
    """A one-line error on standard error, exit status 1 (rejected)."""

    exit_code = int(ExitCode.REJECTED)


class UsageFailed(CommandFailed):
    """A one-line error on standard error, exit status 2 (usage, configuration or connection)."""

    exit_code = int(ExitCode.USAGE)


@dataclass(frozen=True)
class ClientOptions:
    """How the commands build their `Client`; tests pass another one as click's `obj`."""

    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    timeout: float = 30.0


@dataclass(frozen=True)
class Credentials:
    """Where the server is and who the caller is; the secret stays out of repr."""

    url: str
    app_key: str
    app_secret: str = field(repr=False)


def profile_path() -> Path:
    """The profile file: $PENDINGTX_PROFILE, else $XDG_CONFIG_HOME (or ~/.config)/pendingtx/profile.toml."""
    explicit = os.environ.get(PROFILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "pendingtx" / "profile.toml"


def _read_profile(path: Path) -> dict[str, str]:
    if not path.is_file():
        if os.environ.get(PROFILE_ENV):
            raise UsageFailed(f"profile file {path} (from ${PROFILE_ENV}) does not exist")
        return {}
    try:
        loaded = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageFailed(f"cannot read the profile file {path}: {exc}") from None
    wrong = [name for name in ENV_NAMES if name in loaded and not isinstance(loaded[name], str)]
    if wrong:
        raise UsageFailed(f"profile file {path}: {', '.join(wrong)} must be strings")
    return {name: loaded[name] for name in ENV_NAMES if loaded.get(name)}


def resolve(*, url: str | None, app_key: str | None, app_secret: str | None) -> Credentials:
    """The credentials from flags/environment (already merged by click), then the profile file."""
    given = {"url": url, "app_key": app_key, "app_secret": app_secret}
    found = {name: value for name, value in given.items() if value}
    if len(found) < len(given):
        path = profile_path()
        found = {**_read_profile(path), **found}
    missing = [name for name in given if not found.get(name)]
    if missing:
        raise UsageFailed(_missing_message(missing, profile_path()))
    return Credentials(found["url"], found["app_key"], found["app_secret"])


def _missing_message(missing: list[str], path: Path) -> str:
    flags = ", ".join(FLAG_NAMES[name] for name in missing)
    env = ", ".join(ENV_NAMES[name] for name in missing)
    return (
        f"missing credentials: {', '.join(missing)}. Give each (1) as an option ({flags}), "
        f"(2) as an environment variable ({env}), or (3) in the profile file {path} "
        f"(TOML with url, app_key and app_secret; ${PROFILE_ENV} names another file)."
    )


def client_options() -> ClientOptions:
    """The current command's `ClientOptions` (click's `obj`), or the defaults."""
    return click.get_current_context().find_object(ClientOptions) or ClientOptions()


def connect(credentials: Credentials) -> Client:
    """A client for the credentials, built as the current `ClientOptions` say."""
    built = client_options()
    return Client(
        credentials.url,
        credentials.app_key,
        credentials.app_secret,
        timeout=built.timeout,
        transport=built.transport,
        sleep=built.sleep,
        clock=built.clock,
    )


@contextmanager
def reported_errors(credentials: Credentials) -> Iterator[None]:
    """Turn the client's exceptions into one line on standard error and the matching exit status."""
    try:
        yield
    except ConnectionFailed as exc:
        raise UsageFailed(f"cannot reach {credentials.url}: {exc}") from None
    except (AuthenticationError, PermissionDenied) as exc:
        raise UsageFailed(f"the server refused the credentials: {exc}") from None
    except ApiError as exc:
        raise CommandFailed(f"the server refused the request: {exc}") from None
    except PendingTxError as exc:
        raise CommandFailed(str(exc)) from None
