"""Tokens: minted lazily, cached, renewed shortly before expiry and once on a 401; never logged."""

from __future__ import annotations

import base64
import logging

import httpx
import pytest

from pendingtx_client import AuthenticationError, RetryPolicy, UnexpectedResponse
from tests.client.conftest import FakeTime
from tests.client.scripted import (
    APP_KEY,
    APP_SECRET,
    STATUS_PATH,
    ScriptedServer,
    accepted,
    error,
    form,
    job,
    token_value,
)

STATUS = f"GET {STATUS_PATH}"
MINT = "POST /v2/oauthtoken"


@pytest.fixture
def server(flavour: str) -> ScriptedServer:
    server = ScriptedServer(flavour=flavour)
    server.on(STATUS, job("Completed"))
    return server


def test_the_token_is_minted_on_first_use_and_then_reused(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    client = server.client(fake_time)
    assert server.requests == []  # nothing happens until the first call
    with client:
        client.status("KEY")
        client.status("KEY")
    assert server.mints == 1
    [mint] = server.sent(MINT)
    expected = base64.b64encode(f"{APP_KEY}:{APP_SECRET}".encode()).decode()
    assert mint.headers["authorization"] == f"Basic {expected}"
    assert form(mint) == {"grant_type": "client_credentials"}
    for request in server.sent(STATUS):
        assert request.headers["authorization"] == f"Bearer {token_value(1)}"
        assert request.headers["appkey"] == APP_KEY


def test_a_401_mints_exactly_one_new_token_and_retries_once(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.queues[STATUS] = [error(401, "gateway.authentication.failure"), job("Completed")]
    with server.client(fake_time) as client:
        assert client.status("KEY").status == "Completed"
    assert server.mints == 2
    assert [r.headers["authorization"] for r in server.sent(STATUS)] == [
        f"Bearer {token_value(1)}",
        f"Bearer {token_value(2)}",
    ]
    assert fake_time.sleeps == []


def test_a_second_401_is_an_authentication_error(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.queues[STATUS] = [error(401, "gateway.authentication.failure")]
    with server.client(fake_time) as client, pytest.raises(AuthenticationError) as caught:
        client.status("KEY")
    assert caught.value.status == 401
    assert server.mints == 2
    assert len(server.sent(STATUS)) == 2


def test_a_401_retry_of_a_post_keeps_its_idempotency_key(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on("POST /v1/transactions", error(401, "gateway.authentication.failure"), accepted())
    with server.client(fake_time) as client:
        client.submit([{"externalId": "PT-1"}])
    posts = server.sent("POST /v1/transactions")
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert posts[0].content == posts[1].content


def test_the_token_is_renewed_shortly_before_it_expires(server: ScriptedServer, fake_time: FakeTime) -> None:
    with server.client(fake_time) as client:
        client.status("KEY")
        fake_time.now += 3539  # expires_in 3600: renewed 60 s early
        client.status("KEY")
        assert server.mints == 1
        fake_time.now += 1
        client.status("KEY")
    assert server.mints == 2
    assert server.sent(STATUS)[-1].headers["authorization"] == f"Bearer {token_value(2)}"


def test_a_short_lived_token_is_renewed_a_tenth_of_its_life_early(fake_time: FakeTime, flavour: str) -> None:
    server = ScriptedServer(flavour=flavour, expires_in=100)
    server.on(STATUS, job("Completed"))
    with server.client(fake_time) as client:
        client.status("KEY")
        fake_time.now += 89.9
        client.status("KEY")
        assert server.mints == 1
        fake_time.now += 0.1
        client.status("KEY")
    assert server.mints == 2


def test_bad_client_credentials_raise_at_once(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.mint_answers = [error(401, "gateway.authentication.failure")]
    with server.client(fake_time) as client, pytest.raises(AuthenticationError) as caught:
        client.status("KEY")
    assert caught.value.code == "gateway.authentication.failure"
    assert server.sent(STATUS) == []
    assert fake_time.sleeps == []


def test_a_transient_mint_failure_is_retried(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.mint_answers = [error(503, "service.unavailable", transient=True, headers={"Retry-After": "2"})]
    with server.client(fake_time) as client:
        assert client.status("KEY").status == "Completed"
    assert fake_time.sleeps == [2.0]
    assert server.mints == 1


def test_a_token_answer_without_a_token_is_unexpected(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.mint_answers = [httpx.Response(200, json={"token_type": "Bearer"})]
    with server.client(fake_time) as client, pytest.raises(UnexpectedResponse):
        client.status("KEY")


def test_tokens_and_secrets_never_reach_the_logs_or_exceptions(
    server: ScriptedServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.queues[STATUS] = [
        error(401, "gateway.authentication.failure"),
        error(429, "request.rate.limited", transient=True, headers={"Retry-After": "1"}),
        job("Completed"),
    ]
    server.on("POST /v1/transactions", error(401, "gateway.authentication.failure"))
    with server.client(fake_time, retry=RetryPolicy(max_attempts=2)) as client:
        client.status("KEY")
        with pytest.raises(AuthenticationError) as caught:
            client.submit([{"externalId": "PT-1"}])
        shown = [str(caught.value), repr(caught.value), repr(client)]
    assert server.mints >= 3
    assert "401" in caplog.text  # the retries were logged
    basic = base64.b64encode(f"{APP_KEY}:{APP_SECRET}".encode()).decode()
    secrets = [APP_SECRET, basic, *(token_value(n) for n in range(1, server.mints + 1))]
    for secret in secrets:
        assert secret not in caplog.text
        for text in shown:
            assert secret not in text
