"""Where the server and the application's credentials come from when the code does not say.

Each of url, app key and app secret is taken from its environment variable, else from the profile
file (`$PENDINGTX_PROFILE`, default `$XDG_CONFIG_HOME/pendingtx/profile.toml` or
`~/.config/pendingtx/profile.toml`): the same for `Client.from_env` and the command line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pendingtx_client._errors import ConfigurationError

PROFILE_ENV = "PENDINGTX_PROFILE"
ENV_NAMES = {"url": "PENDINGTX_URL", "app_key": "PENDINGTX_APP_KEY", "app_secret": "PENDINGTX_APP_SECRET"}


@dataclass(frozen=True)
class Credentials:
    """Where the server is and who the caller is; the secret stays out of repr."""

    url: str
    app_key: str
    app_secret: str = field(repr=False)


def profile_path(environ: Mapping[str, str] | None = None) -> Path:
    """The profile file: $PENDINGTX_PROFILE, else $XDG_CONFIG_HOME (or ~/.config)/pendingtx/profile.toml."""
    env = os.environ if environ is None else environ
    explicit = env.get(PROFILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    config_home = env.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "pendingtx" / "profile.toml"


def read_profile(path: Path, *, required: bool) -> dict[str, str]:
    """The url, app_key and app_secret the profile file sets; {} when it is absent and not `required`."""
    if not path.is_file():
        if required:
            raise ConfigurationError(
                f"profile file {path} (from ${PROFILE_ENV}) does not exist", profile=path
            )
        return {}
    try:
        loaded = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read the profile file {path}: {exc}", profile=path) from None
    wrong = [name for name in ENV_NAMES if name in loaded and not isinstance(loaded[name], str)]
    if wrong:
        raise ConfigurationError(f"profile file {path}: {', '.join(wrong)} must be strings", profile=path)
    return {name: loaded[name] for name in ENV_NAMES if loaded.get(name)}


def resolve_credentials(
    given: Mapping[str, str | None], environ: Mapping[str, str] | None = None
) -> Credentials:
    """The credentials: those `given` (url, app_key, app_secret), then the environment, then the profile.

    The profile file is read only when something is still missing. Raises `ConfigurationError`
    (with `missing` and `profile`) when a value is found nowhere.
    """
    env = os.environ if environ is None else environ
    from_env = {name: env[var] for name, var in ENV_NAMES.items() if env.get(var)}
    found = {**from_env, **{name: value for name, value in given.items() if value}}
    path = profile_path(env)
    if len(found) < len(ENV_NAMES):
        found = {**read_profile(path, required=bool(env.get(PROFILE_ENV))), **found}
    missing = tuple(name for name in ENV_NAMES if not found.get(name))
    if missing:
        variables = ", ".join(ENV_NAMES[name] for name in missing)
        raise ConfigurationError(
            f"missing credentials: {', '.join(missing)}. Set {variables}, or put "
            f"{', '.join(missing)} in the profile file {path} (${PROFILE_ENV} names another file).",
            missing=missing,
            profile=path,
        )
    return Credentials(found["url"], found["app_key"], found["app_secret"])
