"""Where a webhook may be sent: the URL's shape, then every address its host resolves to.

Checked when an endpoint is registered or changed, and again before every attempt, whose connection
then goes to the address checked here (pinned), so that a DNS answer changed in between cannot
redirect a delivery to an internal address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pendingtx.domain.networks import Address
from pendingtx.domain.webhooks import Target, refused_address, target_of, url_problem

# host, port -> the addresses DNS gives (tests may substitute one).
Resolve = Callable[[str, int], Sequence[Address]]


class RefusedTarget(Exception):
    """The URL may not be delivered to; the message says why (shown to the caller)."""


def resolve(host: str, port: int) -> list[Address]:
    """Every address the system resolver gives for the host (an IP literal is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedTarget(f"the host does not resolve ({type(exc).__name__})") from None
    addresses: dict[Address, None] = {}
    for _family, _type, _proto, _name, sockaddr in found:
        # Scoped IPv6 addresses (fe80::1%eth0) are link-local: refused anyway.
        addresses.setdefault(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]), None)
    if not addresses:
        raise RefusedTarget("the host does not resolve")
    return list(addresses)


@dataclass(frozen=True, slots=True)
class Pinned:
    """A URL's parts and the checked address to connect to."""

    target: Target
    address: Address


def check(url: str, *, allow_private: bool, resolver: Resolve = resolve) -> Pinned:
    """The URL pinned to a checked address; RefusedTarget when its shape or any address is refused."""
    problem = url_problem(url, allow_private=allow_private)
    if problem is not None:
        raise RefusedTarget(problem)
    target = target_of(url)
    addresses = list(resolver(target.host, target.port))
    if not addresses:
        raise RefusedTarget("the host does not resolve")
    refused = refused_address(addresses, allow_private=allow_private)
    if refused is not None:
        raise RefusedTarget(f"resolves to {refused}, which is not a public address")
    return Pinned(target, addresses[0])
