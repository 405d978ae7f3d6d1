"""IP addresses and networks: applications' allow-lists, trusted proxies, and their stored text form."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SEPARATORS = re.compile(r"[\s,]+")


def parse_network(text: str) -> Network:
    """A CIDR network (host bits are dropped: 10.1.2.3/8 is 10.0.0.0/8); a bare address is a /32 or /128."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not an IP address or CIDR network") from None


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """Networks in the order given, each once; ValueError names the first that is not one."""
    found: dict[Network, None] = {}
    for text in texts:
        found.setdefault(parse_network(text), None)
    return tuple(found)


def split_list(text: str) -> list[str]:
    """The items of a list written with commas and/or spaces."""
    return [item for item in _SEPARATORS.split(text) if item]


def allow_list_text(networks: Iterable[Network]) -> str | None:
    """How an allow-list is stored: its networks joined by commas; None (no list) when empty."""
    return ",".join(str(n) for n in networks) or None


@lru_cache(maxsize=1024)
def allow_list_from_text(text: str | None) -> tuple[Network, ...] | None:
    """A stored allow-list, parsed once per distinct text (it is read on every /v1 request)."""
    if text is None:
        return None
    return parse_networks(split_list(text)) or None


@lru_cache(maxsize=4096)
def parse_address(text: str) -> Address | None:
    """An address as peers and proxies write it (`1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`), else None.

    An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, from a dual-stack socket) is its IPv4 address,
    so that IPv4 allow-lists and proxy lists apply to it.
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def contains(networks: Iterable[Network], address: Address | None) -> bool:
    """Whether the address is in one of the networks (an unknown address is in none)."""
    return address is not None and any(address in network for network in networks)
