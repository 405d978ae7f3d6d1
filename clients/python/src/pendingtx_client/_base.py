"""What `Client` and `AsyncClient` share: their configuration, tokens, `from_env`, and the calls as flows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Self

from pendingtx_client._auth import TokenAuth
from pendingtx_client._core import Pacing
from pendingtx_client._operations import JSON, Operations
from pendingtx_client._profile import resolve_credentials
from pendingtx_client._retry import RetryPolicy

DEFAULT_RETRY = RetryPolicy()
DEFAULT_POLL = RetryPolicy(base_delay=0.5, max_delay=5.0)
DEFAULT_TIMEOUT = 30.0


def _user_agent() -> str:
    try:
        return f"pendingtx-client/{version('pendingtx-client')}"
    except PackageNotFoundError:  # running from a source tree
        return "pendingtx-client"


class BaseClient:
    """A client of one pendingtx server for one application (AppKey and AppSecret), without its I/O."""

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        retry: RetryPolicy,
        poll: RetryPolicy,
        clock: Callable[[], float],
        random: Callable[[], float],
        long_poll: bool = True,
    ) -> None:
        if not (base_url and app_key and app_secret):
            raise ValueError("base_url, app_key and app_secret are all required")
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self._auth = TokenAuth(
            token_url=f"{self.base_url}/v2/oauthtoken", app_key=app_key, app_secret=app_secret, clock=clock
        )
        self._ops = Operations(Pacing(retry, clock, random), poll, long_poll=long_poll)

    @classmethod
    def from_env(cls, *, environ: Mapping[str, str] | None = None, **options: Any) -> Self:
        """A client for PENDINGTX_URL, PENDINGTX_APP_KEY and PENDINGTX_APP_SECRET, else the profile file.

        The same variables and profile file as the command line (`$PENDINGTX_PROFILE`, default
        `~/.config/pendingtx/profile.toml`); `options` are the constructor's keyword arguments.
        Raises `ConfigurationError` when a value is found nowhere.
        """
        credentials = resolve_credentials({}, environ)
        return cls(credentials.url, credentials.app_key, credentials.app_secret, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, app_key={self.app_key!r})"

    def _http_options(self) -> dict[str, Any]:
        """The options of the httpx client that carries the requests."""
        return {
            "base_url": self.base_url,
            "auth": self._auth,
            "headers": {"User-Agent": _user_agent(), "Accept": JSON},
        }
