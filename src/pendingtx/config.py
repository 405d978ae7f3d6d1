"""Typed settings, read from `PENDINGTX_*` environment variables by the entrypoints and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from pendingtx.domain.networks import Network, parse_networks, split_list

if TYPE_CHECKING:
    from pendingtx.domain.patching import PatchLimits

ENV_PREFIX = "PENDINGTX_"

Positive = Annotated[int, msgspec.Meta(ge=1)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every tunable of the service; each field maps to `PENDINGTX_<FIELD NAME IN CAPITALS>`."""

    database_url: str = "sqlite:///./pendingtx.db"
    token_ttl_seconds: Positive = 3600
    token_idle_seconds: Positive = 1800
    max_batch_records: Positive = 10_000
    max_body_bytes: Positive = 16 * 1024 * 1024
    max_url_length: Positive = 2048
    status_retry_after_seconds: Positive = 1
    worker_lease_seconds: PositiveSeconds = 30.0
    worker_poll_seconds: PositiveSeconds = 2.0
    worker_chunk_size: Positive = 500
    worker_max_attempts: Positive = 3
    # How long one job may keep a worker while other organizations' jobs wait; past it the job is
    # handed back at its next chunk boundary and resumed in its organization's next turn.
    worker_fair_share_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.25
    # Connections per process: PostgreSQL's max_connections must cover every process's pool.
    database_pool_size: Positive = 10
    # On PostgreSQL, an API call that waits on the database longer than this answers 503.
    database_timeout_seconds: PositiveSeconds = 5.0
    sqlite_busy_timeout_ms: Annotated[int, msgspec.Meta(ge=0)] = 5000
    # FULL makes every acknowledged write survive a power cut, not only a process crash.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # On SIGTERM, how long the server and workers take to finish or hand back work before exiting.
    shutdown_timeout_seconds: PositiveSeconds = 10.0
    # Larger request heads (all headers together; half of it for one value) get 400.
    max_header_bytes: Positive = 16 * 1024
    log_level: str = "info"
    # Failed client authentications at the token endpoint tolerated per AppKey and per client address;
    # once reached, that key or address gets 429 (even with the right secret) until the window that
    # began with its first failure passes. The window counts failures; attempts whose secret is
    # being checked count against the limit too (beyond what is left of it, 429 with Retry-After: 1),
    # so no more secrets than this are checked per window for one AppKey or address, however many
    # requests arrive at once.
    auth_failure_limit: Positive = 10
    auth_failure_window_seconds: Positive = 300
    # Client secrets checked at once in one process: each Argon2id check holds 64 MiB of memory for
    # a few hundred milliseconds of CPU. A token request that finds no slot free within the wait
    # answers 503 with Retry-After (and is not counted as a failure).
    max_concurrent_secret_checks: Positive = 4
    secret_check_wait_seconds: PositiveSeconds = 5.0
    # Each application's request budget on /v1 per minute; status reads have their own, larger one.
    app_requests_per_minute: Positive = 6000
    app_status_reads_per_minute: Positive = 120_000
    # Where rate-limit counters live: "auto" is memory on SQLite (one API process) and the database
    # otherwise, so that every API process on one PostgreSQL shares the counts.
    rate_limit_storage: Literal["auto", "memory", "database"] = "auto"
    # Comma-separated CIDRs of the proxies whose X-Forwarded-For is believed (none by default).
    trusted_proxies: str = ""
    # A JSON Patch may hold at most this many operations (more: 400 at PATCH time).
    max_patch_operations: Positive = 100
    # While a JSON Patch is applied, the transaction counted as its JSON size plus every value added,
    # replaced or copied in may not grow past this; the operation that would make it so fails the job.
    max_patch_document_bytes: Positive = 64 * 1024
    # A status answer lists at most this many problems, then says `"truncated": true`.
    status_max_problems: Positive = 1000

    def __post_init__(self) -> None:
        try:
            parse_networks(split_list(self.trusted_proxies))
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment, then apply explicit overrides (CLI flags)."""
        source = os.environ if environ is None else environ
        names = set(cls.__struct_fields__)
        values: dict[str, Any] = {}
        for key, raw in source.items():
            if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in names:
                values[key[len(ENV_PREFIX) :].lower()] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid setting: {exc}") from None

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
