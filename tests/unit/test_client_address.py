"""The caller's address (api.client_address) and the network helpers behind allow-lists (domain.networks)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from pendingtx.api.client_address import client_address, over_https
from pendingtx.config import Settings
from pendingtx.domain.networks import (
    allow_list_from_text,
    allow_list_text,
    contains,
    parse_address,
    parse_network,
    parse_networks,
)

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])


def scope(peer: str | None, *forwarded_for: str, port: int = 51000) -> dict[str, Any]:
    """An ASGI HTTP scope from this peer, with one X-Forwarded-For header line per value."""
    headers = [(b"host", b"api.example")]
    headers += [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded_for]
    return {"type": "http", "client": (peer, port) if peer is not None else None, "headers": headers}


def address(peer: str | None, *forwarded_for: str, trusted: Any = PROXIES) -> str | None:
    found = client_address(scope(peer, *forwarded_for), trusted)
    return str(found) if found is not None else None


# --- without trusted proxies: the peer, whatever the header says ----------------------------------


@pytest.mark.parametrize("peer", ["198.51.100.7", "2001:db8::7"])
def test_the_peer_is_the_client_when_no_proxy_is_trusted(peer: str) -> None:
    assert address(peer, trusted=()) == peer
    assert address(peer, "203.0.113.9", trusted=()) == peer


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    # A client that is not one of the proxies cannot claim another address by sending the header.
    assert address("198.51.100.7", "10.1.1.1") == "198.51.100.7"
    assert address("198.51.100.7", "203.0.113.9, 10.2.2.2") == "198.51.100.7"


def test_an_unknown_peer_is_an_unknown_client() -> None:
    assert address(None) is None
    assert address(None, "203.0.113.9") is None
    # Starlette's TestClient and Unix sockets give names, not addresses.
    assert address("testclient") is None
    assert address("testclient", "203.0.113.9") is None


def test_an_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    assert address("::ffff:198.51.100.7", trusted=()) == "198.51.100.7"
    # ...so an IPv4 proxy list applies to it too.
    assert address("::ffff:10.0.0.2", "203.0.113.9") == "203.0.113.9"


# --- behind trusted proxies: walk X-Forwarded-For from the right ---------------------------------


def test_a_trusted_peer_forwards_the_client_it_saw() -> None:
    assert address("10.0.0.2", "203.0.113.9") == "203.0.113.9"


def test_without_the_header_a_trusted_peer_is_the_client() -> None:
    assert address("10.0.0.2") == "10.0.0.2"
    assert address("10.0.0.2", "") == "10.0.0.2"


def test_trusted_hops_are_skipped_from_the_right() -> None:
    # client -> proxy 10.9.9.9 -> proxy 10.0.0.3 -> load balancer 10.0.0.2 (the peer)
    assert address("10.0.0.2", "203.0.113.9, 10.9.9.9, 10.0.0.3") == "203.0.113.9"


def test_what_the_client_wrote_left_of_its_own_address_is_ignored() -> None:
    # The client sent "X-Forwarded-For: 10.5.5.5, 192.0.2.1" itself; the proxy appended what it saw.
    assert address("10.0.0.2", "10.5.5.5, 192.0.2.1, 198.51.100.7") == "198.51.100.7"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert address("10.0.0.2", "10.7.7.7, 10.0.0.3") == "10.7.7.7"


def test_several_header_lines_form_one_list_in_order() -> None:
    assert address("10.0.0.2", "198.51.100.7", "10.0.0.3") == "198.51.100.7"
    assert address("10.0.0.2", "192.0.2.1", "198.51.100.7, 10.0.0.3") == "198.51.100.7"


def test_a_hop_that_is_not_an_address_makes_the_client_unknown() -> None:
    assert address("10.0.0.2", "203.0.113.9, unknown") is None
    assert address("10.0.0.2", "_hidden") is None


def test_ipv6_hops_and_ports() -> None:
    assert address("fd00::2", "2001:db8::7") == "2001:db8::7"
    assert address("10.0.0.2", "[2001:db8::7]:4711") == "2001:db8::7"
    assert address("10.0.0.2", "203.0.113.9:4711") == "203.0.113.9"
    assert address("fd00::2", "203.0.113.9, fd00::3") == "203.0.113.9"


def test_the_setting_lists_trusted_proxies() -> None:
    settings = Settings(trusted_proxies="10.0.0.0/8, 192.168.1.1 ,fd00::/8")
    trusted = settings.trusted_proxy_networks
    assert [str(n) for n in trusted] == ["10.0.0.0/8", "192.168.1.1/32", "fd00::/8"]
    assert address("192.168.1.1", "203.0.113.9", trusted=trusted) == "203.0.113.9"
    assert Settings().trusted_proxy_networks == ()


def test_a_bad_trusted_proxy_setting_is_refused() -> None:
    refused = "PENDINGTX_TRUSTED_PROXIES: 'nonsense' is not an IP address or CIDR network"
    with pytest.raises(ValueError, match=refused):
        Settings.from_env({"PENDINGTX_TRUSTED_PROXIES": "10.0.0.0/8,nonsense"})


# --- networks -------------------------------------------------------------------------------------


def test_networks_drop_host_bits_and_take_bare_addresses() -> None:
    assert parse_network("10.1.2.3/8") == ip_network("10.0.0.0/8")
    assert parse_network(" 192.0.2.1 ") == ip_network("192.0.2.1/32")
    assert parse_network("2001:db8::1/32") == ip_network("2001:db8::/32")
    assert parse_networks(["10.0.0.1/8", "10.0.0.0/8", "::1"]) == (
        ip_network("10.0.0.0/8"),
        ip_network("::1/128"),
    )


@pytest.mark.parametrize("text", ["", "10.0.0.0/33", "300.1.1.1", "example.com", "2001:db8::/129"])
def test_not_a_network(text: str) -> None:
    with pytest.raises(ValueError, match="is not an IP address or CIDR network"):
        parse_network(text)


def test_the_stored_text_of_an_allow_list() -> None:
    networks = parse_networks(["10.0.0.0/8", "2001:db8::/32"])
    assert allow_list_text(networks) == "10.0.0.0/8,2001:db8::/32"
    assert allow_list_from_text("10.0.0.0/8,2001:db8::/32") == networks
    assert allow_list_text(()) is None
    assert allow_list_from_text(None) is None
    # Parsed once per distinct text.
    assert allow_list_from_text("10.0.0.0/8,2001:db8::/32") is allow_list_from_text(
        "10.0.0.0/8,2001:db8::/32"
    )


def test_membership_across_address_families() -> None:
    networks = parse_networks(["10.0.0.0/8", "2001:db8::/32"])
    assert contains(networks, ip_address("10.200.0.1"))
    assert contains(networks, ip_address("2001:db8:ffff::1"))
    assert not contains(networks, ip_address("11.0.0.1"))
    assert not contains(networks, ip_address("2001:db9::1"))
    assert not contains(networks, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:80", "192.0.2.1"),
        ("::1", "::1"),
        ("[::1]:80", "::1"),
        ("[::1]", "::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("[::1", None),
        ("host.example", None),
        ("", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    found = parse_address(text)
    assert (str(found) if found is not None else None) == expected


# --- https: the connection's scheme, or a trusted proxy's X-Forwarded-Proto ------------------------


def proto_scope(peer: str, scheme: str, *forwarded_proto: str) -> dict[str, Any]:
    found = scope(peer)
    found["scheme"] = scheme
    found["headers"] += [(b"x-forwarded-proto", value.encode("latin-1")) for value in forwarded_proto]
    return found


def test_https_is_the_connections_scheme_or_what_a_trusted_proxy_says() -> None:
    assert over_https(proto_scope("198.51.100.7", "https"), ())
    assert not over_https(proto_scope("198.51.100.7", "http"), PROXIES)
    assert over_https(proto_scope("10.1.2.3", "http", "https"), PROXIES)
    assert over_https(proto_scope("10.1.2.3", "http", "http", "https"), PROXIES)  # the proxy's is last
    assert not over_https(proto_scope("10.1.2.3", "http", "https, http"), PROXIES)
    assert not over_https(proto_scope("10.1.2.3", "http"), PROXIES)
    # A client cannot claim https itself.
    assert not over_https(proto_scope("198.51.100.7", "http", "https"), PROXIES)
    assert not over_https(proto_scope("10.1.2.3", "http", "https"), ())
