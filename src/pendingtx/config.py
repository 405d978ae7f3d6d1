"""Typed settings, read from `PENDINGTX_*` environment variables by the entrypoints and passed down.

`Settings` is the one place that names every setting, its type, bounds, default and meaning; the
README's table is generated from it (`pendingtx settings --markdown`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from pendingtx.domain.networks import Network, parse_networks, split_list

if TYPE_CHECKING:
    from pendingtx.domain.patching import PatchLimits

ENV_PREFIX = "PENDINGTX_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "postgresql+psycopg"})
# PENDINGTX_* variables that are not server settings, and who reads them.
OTHER_VARIABLES = {
    "PENDINGTX_URL": "the client commands and SDK: the server's root URL",
    "PENDINGTX_APP_KEY": "the client commands and SDK: the AppKey",
    "PENDINGTX_APP_SECRET": "the client commands and SDK: the AppSecret",
    "PENDINGTX_PROFILE": "the client commands and SDK: the profile file",
    "PENDINGTX_TEST_PG_URL": "the test suite: the PostgreSQL server to test against",
    "PENDINGTX_FAST_EXAMPLES": "the test suite: fewer property-based examples",
    "PENDINGTX_TEST_HTTP_SERVER": "the test suite: the HTTP server of every e2e server (`granian`)",
}


def _doc(text: str, **bounds: Any) -> msgspec.Meta:
    return msgspec.Meta(description=text, **bounds)


# A user:password@ in a URL (any scheme), up to the host.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)[^\s/@]*@")


def mask_credentials(text: str) -> str:
    """The text with the password of every URL in it replaced by `***`."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


class SettingsError(ValueError):
    """A setting that cannot be used; the message names its environment variable."""


def env_name(field: str) -> str:
    """The environment variable of a setting: `PENDINGTX_<FIELD IN CAPITALS>`."""
    return ENV_PREFIX + field.upper()


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every tunable of the service; each field maps to `PENDINGTX_<FIELD NAME IN CAPITALS>`."""

    database_url: Annotated[
        str,
        _doc(
            "the database: `sqlite:///PATH` (a file, created if missing) or "
            "`postgresql://USER:PASSWORD@HOST:PORT/NAME` (see below)"
        ),
    ] = "sqlite:///./pendingtx.db"
    token_ttl_seconds: Annotated[int, _doc("absolute lifetime of an access token", ge=1)] = 3600
    token_idle_seconds: Annotated[int, _doc("a token unused for longer than this expires", ge=1)] = 1800
    max_batch_records: Annotated[int, _doc("most records in one POST", ge=1)] = 10_000
    max_body_bytes: Annotated[int, _doc("larger request bodies get `413`", ge=1)] = 16 * 1024 * 1024
    max_url_length: Annotated[int, _doc("longer URLs get `414`", ge=1)] = 2048
    status_retry_after_seconds: Annotated[
        int, _doc("the `Retry-After` hint on a status that is not final yet", ge=1)
    ] = 1
    worker_lease_seconds: Annotated[
        float,
        _doc(
            "how long a worker's claim on a job lasts without progress before another worker may "
            "take it over",
            gt=0,
        ),
    ] = 30.0
    worker_poll_seconds: Annotated[
        float, _doc("how often an idle worker looks for jobs it was not woken for", gt=0)
    ] = 2.0
    worker_chunk_size: Annotated[int, _doc("records applied per commit", ge=1)] = 500
    worker_max_attempts: Annotated[
        int,
        _doc(
            "attempts before a job that keeps failing is given up (`Failed` or `Partially Completed`)",
            ge=1,
        ),
    ] = 3
    worker_fair_share_seconds: Annotated[
        float,
        _doc(
            "how long one job may keep a worker while other organizations' jobs wait; it is then "
            "handed back at a chunk boundary and resumed in its organization's next turn",
            ge=0,
        ),
    ] = 0.25
    database_pool_size: Annotated[
        int,
        _doc(
            "database connections each process may hold (PostgreSQL's `max_connections` must cover "
            "every process's pool)",
            ge=1,
        ),
    ] = 10
    database_timeout_seconds: Annotated[
        float, _doc("on PostgreSQL, an API call that waits longer on the database answers `503`", gt=0)
    ] = 5.0
    sqlite_busy_timeout_ms: Annotated[int, _doc("how long SQLite waits for a lock", ge=0)] = 5000
    sqlite_synchronous: Annotated[
        Literal["FULL", "NORMAL"],
        _doc("`FULL` (an acknowledged write survives a power cut) or `NORMAL` (survives a process crash)"),
    ] = "FULL"
    shutdown_timeout_seconds: Annotated[
        float,
        _doc("on SIGTERM, how long the server and workers take to finish or hand back work", gt=0),
    ] = 10.0
    max_header_bytes: Annotated[
        int, _doc("larger request heads (all headers; half of it for one value) get `400`", ge=1)
    ] = 16 * 1024
    log_level: Annotated[str, _doc("`" + "`, `".join(LOG_LEVELS[:-1]) + "` or `trace`")] = "info"
    auth_failure_limit: Annotated[
        int,
        _doc(
            "failed client authentications per AppKey and per client address within the window "
            "before the token endpoint answers `429` (also to the right secret); attempts whose "
            "secret is being checked count against it too, so no burst checks more secrets than "
            "this per window",
            ge=1,
        ),
    ] = 10
    auth_failure_window_seconds: Annotated[int, _doc("that window", ge=1)] = 300
    max_concurrent_secret_checks: Annotated[
        int, _doc("client secrets one process checks at once (each Argon2id check holds 64 MiB)", ge=1)
    ] = 4
    secret_check_wait_seconds: Annotated[
        float,
        _doc(
            "how long a token request waits for one of those before it answers `503` with `Retry-After`",
            gt=0,
        ),
    ] = 5.0
    app_requests_per_minute: Annotated[
        int,
        _doc("each application's budget of `/v1` requests other than status reads (`429` beyond)", ge=1),
    ] = 6000
    app_status_reads_per_minute: Annotated[
        int, _doc("each application's separate budget of status reads", ge=1)
    ] = 120_000
    rate_limit_storage: Annotated[
        Literal["auto", "memory", "database"],
        _doc(
            "where those counts live: `memory`, `database`, or `auto` (memory for a lone process on "
            "SQLite, else the database, so that they hold across processes)"
        ),
    ] = "auto"
    trusted_proxies: Annotated[
        str,
        _doc(
            "comma-separated CIDRs of proxies whose `X-Forwarded-For` is believed when finding the "
            "caller's address"
        ),
    ] = ""
    max_patch_operations: Annotated[int, _doc("most operations in one JSON Patch (`400` beyond)", ge=1)] = 100
    max_patch_document_bytes: Annotated[
        int,
        _doc(
            "while a JSON Patch is applied, the transaction (its JSON size plus every value added, "
            "replaced or copied in) may not grow past this; the operation that would is refused "
            "and the modification rejected",
            ge=1,
        ),
    ] = 64 * 1024
    status_max_problems: Annotated[
        int,
        _doc(
            'most problems a status answer lists; beyond, it says `"truncated": true` (all stay stored)',
            ge=1,
        ),
    ] = 1000
    webhook_allow_private: Annotated[
        bool,
        _doc(
            "let webhooks target loopback, private and other non-public addresses, and plain `http` "
            "(development and tests only)"
        ),
    ] = False
    webhook_retry_schedule: Annotated[
        str,
        _doc(
            "seconds before each retry of a failed webhook delivery, comma-separated (each shifted by "
            "up to ±20 % at random); after the last, the delivery is given up"
        ),
    ] = "5,300,1800,7200,18000,36000"
    webhook_timeout_seconds: Annotated[
        float, _doc("how long a webhook endpoint has to answer a delivery", gt=0, le=60)
    ] = 10.0
    webhook_lease_seconds: Annotated[
        float,
        _doc(
            "how long a worker's claim on a webhook delivery lasts; a delivery whose worker died is "
            "sent again after it (must exceed the timeout)",
            gt=0,
        ),
    ] = 60.0
    webhook_disable_after_seconds: Annotated[
        float, _doc("a webhook endpoint whose deliveries have failed for this long is disabled", gt=0)
    ] = 5 * 86400.0
    webhook_poll_seconds: Annotated[
        float, _doc("how often the webhook deliverer looks for new events and due retries", gt=0)
    ] = 1.0
    webhook_concurrency: Annotated[
        int,
        _doc(
            "webhook deliveries one worker process sends at once (at most one per endpoint, and half "
            "of them per organization)",
            ge=1,
            le=256,
        ),
    ] = 8
    webhook_key: Annotated[
        str,
        _doc(
            "base64 of 32 random bytes that encrypt webhook signing secrets at rest; empty: a key "
            "kept in the database's `server_keys` table (see SECURITY.md)"
        ),
    ] = ""
    job_retention_days: Annotated[
        float,
        _doc(
            "a finished job (its payload, problems, results and events) is deleted this long after it "
            "ended; its key then answers `410` (fractions allowed; transactions are never deleted)",
            gt=0,
        ),
    ] = 30.0
    retention_sweep_seconds: Annotated[
        float, _doc("how often the workers' process deletes jobs past their retention", gt=0)
    ] = 3600.0
    max_waiting_per_organization: Annotated[
        int,
        _doc(
            "status reads with `wait` one process holds at once for one organization; more get `429`",
            ge=1,
        ),
    ] = 5000
    max_event_streams_per_organization: Annotated[
        int,
        _doc(
            "open `GET /v1/events` streams one process serves at once for one organization; more get `429`",
            ge=1,
        ),
    ] = 100
    event_heartbeat_seconds: Annotated[
        float, _doc("an open event stream sends a comment line at least this often", gt=0, le=15)
    ] = 15.0
    event_check_seconds: Annotated[
        float,
        _doc(
            "on SQLite, how often a process with held status reads or open streams looks for events "
            "committed by other processes (`pendingtx worker`)",
            gt=0,
        ),
    ] = 0.5
    processes: Annotated[
        int,
        _doc(
            "API processes `serve` runs on its one port (`--processes`), the embedded worker in one "
            "of them; `0`: one per core, at most 8 (sandbox mode always runs one)",
            ge=0,
            le=256,
        ),
    ] = 0
    http_server: Annotated[
        Literal["uvicorn", "granian"],
        _doc(
            "the HTTP server `serve` runs the API on (`--http-server`): `uvicorn`, or `granian` (needs "
            "the `granian` extra: `pip install 'pendingtx[granian]'`; see docs/PERFORMANCE.md)"
        ),
    ] = "uvicorn"
    sandbox: Annotated[
        bool,
        _doc(
            "sandbox mode (`serve --sandbox`): fault injection, trigger values, a movable clock and "
            "reproducible job keys for client developers; marks its database, and a sandbox and a "
            "production server each refuse the other's database"
        ),
    ] = False
    sandbox_seed: Annotated[
        str,
        _doc(
            "in sandbox mode, job keys are derived from this seed and the batch id, so that the same "
            "script against a fresh sandbox gets the same keys; empty: random keys"
        ),
    ] = ""

    def __post_init__(self) -> None:
        scheme = urlsplit(self.database_url).scheme.lower() if "://" in self.database_url else ""
        if scheme not in DATABASE_SCHEMES:
            raise SettingsError(
                f"{env_name('database_url')}: unsupported database "
                f"{mask_credentials(self.database_url)!r}; use sqlite:///PATH or "
                "postgresql://USER:PASSWORD@HOST:PORT/NAME"
            )
        if self.log_level.lower() not in LOG_LEVELS:
            raise SettingsError(f"{env_name('log_level')}: must be one of {', '.join(LOG_LEVELS)}")
        try:
            parse_networks(split_list(self.trusted_proxies))
        except ValueError as exc:
            raise SettingsError(f"{env_name('trusted_proxies')}: {exc}") from None
        self._check_webhooks()

    def _check_webhooks(self) -> None:
        # Imported here: the client commands read settings without the server's dependencies.
        from pendingtx.domain.webhooks import parse_schedule, webhook_key_bytes

        try:
            parse_schedule(self.webhook_retry_schedule)
        except ValueError as exc:
            raise SettingsError(f"{env_name('webhook_retry_schedule')}: {exc}") from None
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise SettingsError(
                f"{env_name('webhook_lease_seconds')}: must exceed {env_name('webhook_timeout_seconds')}"
            )
        if self.webhook_key:
            try:
                webhook_key_bytes(self.webhook_key)
            except ValueError as exc:
                raise SettingsError(f"{env_name('webhook_key')}: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment, then apply explicit overrides (CLI flags).

        A `PENDINGTX_*` variable that names no setting is refused, so that a typo is never ignored.
        """
        source = os.environ if environ is None else environ
        _refuse_unknown(source)
        values: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            name = env_name(field.name)
            raw = overrides.get(field.name)
            if raw is None:
                raw = source.get(name)
            if raw is None:
                continue
            try:
                values[field.name] = msgspec.convert(raw, field.type, strict=False)
            except msgspec.ValidationError as exc:
                reason = str(exc)
                raise SettingsError(
                    f"{name}: {reason[:1].lower()}{reason[1:]}, not {mask_credentials(str(raw))!r}"
                ) from None
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (tests shorten lifetimes this way)."""
        return msgspec.structs.replace(self, **changes)

    @property
    def patch_limits(self) -> PatchLimits:
        """The bounds on a JSON Patch."""
        # Imported here: the client commands read settings without the server's dependencies.
        from pendingtx.domain.patching import PatchLimits

        return PatchLimits(self.max_patch_operations, self.max_patch_document_bytes)

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        """The networks of `trusted_proxies`."""
        return parse_networks(split_list(self.trusted_proxies))


def setting_variables() -> list[str]:
    """The environment variable of every setting, in the order Settings defines them."""
    return [env_name(field.name) for field in msgspec.structs.fields(Settings)]


def _refuse_unknown(environ: Mapping[str, str]) -> None:
    known = {*setting_variables(), *OTHER_VARIABLES}
    unknown = sorted(name for name in environ if name.startswith(ENV_PREFIX) and name not in known)
    if not unknown:
        return
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        described.append(f"{name} (did you mean {close[0]}?)" if close else name)
    raise SettingsError(
        f"unknown environment variable{'s' if len(unknown) > 1 else ''} {', '.join(described)}; "
        f"the known ones are {', '.join(sorted(known))}"
    )


def _default_text(value: object) -> str:
    if value == "":
        return "(none)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def settings_markdown() -> str:
    """The README's table of settings: each variable, its default and its meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for field in msgspec.structs.fields(Settings):
        meta = field.type.__metadata__[0]
        lines.append(f"| `{env_name(field.name)}` | {_default_text(field.default)} | {meta.description} |")
    return "\n".join(lines) + "\n"
