"""Where the client commands find the server and the application's credentials, and exit codes.

Each of url, app key and app secret comes from its flag, else its environment variable, else the
profile file (`$PENDINGTX_PROFILE`, default `~/.config/pendingtx/profile.toml`). The secret is
never printed, not even in an error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import click
import httpx

from pendingtx_client import (
    ApiError,
    AuthenticationError,
    Client,
    ConfigurationError,
    ConnectionFailed,
    PendingTxError,
    PermissionDenied,
)
from pendingtx_client._profile import ENV_NAMES, PROFILE_ENV, Credentials, resolve_credentials

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
    long_poll: bool = True


def resolve(*, url: str | None, app_key: str | None, app_secret: str | None) -> Credentials:
    """The credentials from flags/environment (already merged by click), then the profile file."""
    try:
        return resolve_credentials({"url": url, "app_key": app_key, "app_secret": app_secret})
    except ConfigurationError as exc:
        if not exc.missing or exc.profile is None:
            raise UsageFailed(str(exc)) from None
        raise UsageFailed(_missing_message(list(exc.missing), exc.profile)) from None


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
        long_poll=built.long_poll,
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
