"""Application credentials and access tokens: how they are made, stored and judged."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

PRODUCT = "pending-transactions"
# Idle time is tracked coarsely: `last_used_at` is written at most this often per token.
TOUCH_INTERVAL = timedelta(seconds=60)


def new_app_key() -> str:
    """A 32-character consumer key (public, but unguessable)."""
    return secrets.token_hex(16)


def new_app_secret() -> str:
    """A secret with 256 bits of randomness, shown to the operator once."""
    return secrets.token_urlsafe(32)


def new_access_token() -> str:
    """An opaque bearer token with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The only form in which a token is stored; a fast digest suffices for 256 random bits."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenLifetimes:
    """How long a token lives in all, and how long it may sit unused."""

    absolute: timedelta
    idle: timedelta

    @property
    def touch_interval(self) -> timedelta:
        """How stale `last_used_at` may get; well under the idle lifetime so the coarse clock is safe."""
        return min(TOUCH_INTERVAL, self.idle / 4)

    def expired(self, *, expires_at: datetime, last_used_at: datetime, now: datetime) -> bool:
        """Whether a token is past its absolute lifetime or has been idle for too long."""
        return now >= expires_at or now - last_used_at > self.idle

    def needs_touch(self, *, last_used_at: datetime, now: datetime) -> bool:
        """Whether this use must be written down to keep the idle clock honest."""
        return now - last_used_at >= self.touch_interval
