"""Webhooks' pure rules: which addresses a delivery may go to, URL shapes, the retry schedule, secrets."""

from __future__ import annotations

import base64
import ipaddress
import random
from datetime import UTC, datetime, timedelta

import pytest

from pendingtx.config import Settings, SettingsError
from pendingtx.domain.webhooks import (
    is_public,
    new_secret,
    parse_schedule,
    refused_address,
    retry_at,
    target_of,
    url_problem,
)
from pendingtx.services.webhook_targets import RefusedTarget, check


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
        "224.0.0.1", "255.255.255.255", "192.0.2.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(text: str) -> None:
    assert not is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


def test_one_non_public_answer_refuses_the_host() -> None:
    public, private = ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.1")
    assert refused_address([public, private], allow_private=False) == private
    assert refused_address([public, private], allow_private=True) is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.com/x?y=1", True),
        ("http://hooks.example.com/", False),
        ("https://user@hooks.example.com/", False),
        ("https://hooks.example.com/#frag", False),
        ("https:///nohost", False),
        ("https://hooks.example.com:0/", False),
        ("https://hooks.example.com:99999/", False),
        ("https://hooks.exa mple.com/", False),
        ("javascript:alert(1)", False),
    ],
)
def test_url_shapes(url: str, allowed: bool) -> None:
    assert (url_problem(url, allow_private=False) is None) is allowed


def test_a_target_keeps_host_port_and_path() -> None:
    target = target_of("https://Hooks.Example.com:8443/in?a=1")
    assert (target.host, target.port, target.target) == ("hooks.example.com", 8443, "/in?a=1")


def test_hostnames_are_checked_by_what_they_resolve_to() -> None:
    with pytest.raises(RefusedTarget, match="not a public address"):
        check("https://localhost/", allow_private=False)
    with pytest.raises(RefusedTarget, match="not a public address"):
        check(
            "https://rebound.test/",
            allow_private=False,
            resolver=lambda h, p: [ipaddress.ip_address("10.1.1.1")],
        )
    pinned = check(
        "https://ok.test/", allow_private=False, resolver=lambda h, p: [ipaddress.ip_address("8.8.4.4")]
    )
    assert str(pinned.address) == "8.8.4.4"


def test_retries_follow_the_schedule_with_jitter_then_give_up() -> None:
    schedule = parse_schedule("5,300")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(7)
    first = retry_at(now, 1, schedule, rng)
    second = retry_at(now, 2, schedule, rng)
    assert first is not None
    assert second is not None
    assert timedelta(seconds=4) <= first - now <= timedelta(seconds=6)
    assert timedelta(seconds=240) <= second - now <= timedelta(seconds=360)
    assert retry_at(now, 3, schedule, rng) is None


@pytest.mark.parametrize("text", ["", "5,x", "0", "-1", "5,,700000"])
def test_a_bad_schedule_is_a_settings_error(text: str) -> None:
    with pytest.raises(SettingsError, match="PENDINGTX_WEBHOOK_RETRY_SCHEDULE"):
        Settings(webhook_retry_schedule=text)


def test_the_lease_must_outlast_the_timeout_and_the_key_must_be_32_bytes() -> None:
    with pytest.raises(SettingsError, match="PENDINGTX_WEBHOOK_LEASE_SECONDS"):
        Settings(webhook_lease_seconds=5, webhook_timeout_seconds=10)
    with pytest.raises(SettingsError, match="PENDINGTX_WEBHOOK_KEY"):
        Settings(webhook_key=base64.b64encode(b"short").decode())
    Settings(webhook_key=base64.b64encode(bytes(32)).decode())


def test_secrets_are_standard_webhooks_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_pendingtx_settings_never_prints_the_webhook_key() -> None:
    from click.testing import CliRunner

    from pendingtx.cli import main

    key = base64.b64encode(bytes(range(32))).decode()
    result = CliRunner().invoke(main, ["settings"], env={"PENDINGTX_WEBHOOK_KEY": key})
    assert result.exit_code == 0, result.output
    assert "PENDINGTX_WEBHOOK_KEY=***" in result.output.splitlines()
    assert key not in result.output
