"""Webhook endpoints' rules: what may be registered, where a delivery may go, when it is tried again."""

from __future__ import annotations

import base64
import ipaddress
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from pendingtx.domain.events import EventType
from pendingtx.domain.networks import Address

WEBHOOK_ID_PREFIX = "wh_"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
# Standard Webhooks recommends secrets of 24 to 64 bytes.
SECRET_BYTES = 32
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 256
MAX_ENDPOINTS_PER_ORG = 10
# Spelled out so the API document and the parser agree.
ALL_EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
# Jitter spreads retries of many deliveries that failed together (an endpoint's outage) over time.
JITTER = 0.2


class DeliveryState(StrEnum):
    """Where a delivery stands: waiting for an attempt, or done one way or the other."""

    PENDING = "pending"
    DELIVERED = "delivered"
    GIVEN_UP = "given_up"


def new_webhook_id() -> str:
    """A public endpoint id, unguessable so that it says nothing about other organizations'."""
    return WEBHOOK_ID_PREFIX + secrets.token_urlsafe(16)


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` and the base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def events_text(types: Iterable[EventType]) -> str:
    """How an endpoint's event types are stored: comma-joined, in the log's order."""
    chosen = set(types)
    return ",".join(t.value for t in EventType if t in chosen)


def events_from_text(text: str) -> tuple[EventType, ...]:
    """The stored event types."""
    return tuple(EventType(t) for t in text.split(",") if t)


@dataclass(frozen=True, slots=True)
class Target:
    """A delivery URL taken apart: where to connect and what to tell the server."""

    scheme: str
    host: str
    port: int
    # The path and query, as sent in the request line.
    target: str


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why the URL may not be registered before any DNS lookup (its shape), or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "must be an absolute URL"
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        return "must be an https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if parts.fragment:
        return "must not have a fragment"
    if port == 0:
        return "must not use port 0"
    return None


def target_of(url: str) -> Target:
    """The parts of a URL that `url_problem` accepted."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, target)


def is_public(address: Address) -> bool:
    """Whether a delivery may go to this address: a globally routable unicast one.

    Loopback, private, link-local, shared (CGNAT), documentation, multicast, reserved and
    unspecified addresses are all refused; an IPv4-mapped or 6to4/NAT64-embedded address is
    judged by its IPv4 address too.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and not is_public(embedded):
            return False
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def refused_address(addresses: Sequence[Address], *, allow_private: bool) -> Address | None:
    """The first address a delivery may not go to (all must be allowed: DNS may answer any of them)."""
    if allow_private:
        return None
    return next((a for a in addresses if not is_public(a)), None)


def parse_schedule(text: str) -> tuple[float, ...]:
    """The retry schedule from its setting: comma-separated positive seconds."""
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError("must be comma-separated seconds, e.g. 5,300,1800") from None
    if not delays or any(not 0 < d <= 7 * 86400 for d in delays):
        raise ValueError("must list at least one delay, each above 0 and at most 604800 seconds")
    return delays


def retry_at(
    now: datetime, attempt: int, schedule: Sequence[float], rng: random.Random | None = None
) -> datetime | None:
    """When to try again after failed attempt number `attempt` (1-based), or None: give up.

    Each delay is the schedule's, shifted by up to ±20 % at random.
    """
    if attempt > len(schedule):
        return None
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return now + timedelta(seconds=schedule[attempt - 1] * spread)


KEY_BYTES = 32


def webhook_key_bytes(text: str) -> bytes:
    """The webhook key of the setting: base64 of exactly 32 bytes (AES-256)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ValueError("must be base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"must be the base64 of {KEY_BYTES} bytes, not {len(key)}")
    return key
