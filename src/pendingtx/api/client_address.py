"""The caller's IP address: the peer of the connection, or what trusted proxies say it was.

`X-Forwarded-For` is believed only when the peer is one of the trusted proxies
(`PENDINGTX_TRUSTED_PROXIES`). Then the list is walked from the right, each entry having been
appended by the hop to its right: trusted addresses are skipped, and the first untrusted one is
the client. Entries left of it were written by the client itself and are ignored, so a client
cannot pass itself off as another address by sending the header. When every entry is trusted,
the leftmost is the client; an entry that is not an address makes the client unknown (None).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Scope

from pendingtx.domain.networks import Address, Network, contains, parse_address

_FORWARDED_FOR = b"x-forwarded-for"
_FORWARDED_PROTO = b"x-forwarded-proto"


def _forwarded_for(scope: Scope) -> list[str]:
    # Several header lines form one list, in order (RFC 9110, 5.3); ASGI names are lower case.
    lines = [value.decode("latin-1") for name, value in scope["headers"] if name == _FORWARDED_FOR]
    return [hop for hop in (h.strip() for h in ",".join(lines).split(",")) if hop]


def client_address(scope: Scope, trusted: Sequence[Network]) -> Address | None:
    """The client's address, or None when it cannot be known (e.g. a Unix socket peer)."""
    peer = scope.get("client")
    address = parse_address(peer[0]) if peer else None
    if not trusted or not contains(trusted, address):
        return address
    for hop in reversed(_forwarded_for(scope)):
        address = parse_address(hop)
        if not contains(trusted, address):
            return address
    return address


def over_https(scope: Scope, trusted: Sequence[Network]) -> bool:
    """Whether the client reached the service over https: the connection's own scheme, or, when the
    peer is a trusted proxy (which terminates TLS), the last `X-Forwarded-Proto` it added."""
    if scope.get("scheme") == "https":
        return True
    peer = scope.get("client")
    if not trusted or not contains(trusted, parse_address(peer[0]) if peer else None):
        return False
    lines = [value.decode("latin-1") for name, value in scope["headers"] if name == _FORWARDED_PROTO]
    protos = [p.strip().lower() for p in ",".join(lines).split(",") if p.strip()]
    return bool(protos) and protos[-1] == "https"
