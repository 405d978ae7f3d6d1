"""Retries against a scripted server: which answers are retried, how long between tries, one key per POST."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from pendingtx_client import (
    Conflict,
    ConnectionFailed,
    IdempotencyKeyReused,
    RateLimited,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    ValidationError,
)
from pendingtx_client._retry import retry_after
from tests.client.conftest import FakeTime
from tests.client.scripted import ScriptedServer, accepted, error, job

POST = "POST /v1/transactions"


@pytest.fixture
def server(flavour: str) -> ScriptedServer:
    return ScriptedServer(flavour=flavour)


def test_429_waits_as_retry_after_says_then_succeeds(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(
        POST, error(429, "request.rate.limited", transient=True, headers={"Retry-After": "7"}), accepted()
    )
    with server.client(fake_time) as client:
        ref = client.submit([{"externalId": "PT-1"}])
    assert (ref.key, ref.batch_id) == ("KEY", "7")
    assert fake_time.sleeps == [7.0]
    assert len(server.sent(POST)) == 2


def test_every_retry_of_one_post_has_the_same_idempotency_key_and_the_next_post_a_new_one(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.on(
        POST,
        error(503, "service.unavailable", transient=True, headers={"Retry-After": "1"}),
        httpx.ConnectError("connection refused"),
        error(429, "request.rate.limited", transient=True),
        accepted("FIRST"),
        accepted("SECOND"),
    )
    with server.client(fake_time) as client:
        assert client.submit([{"externalId": "PT-1"}]).key == "FIRST"
        assert client.submit([{"externalId": "PT-2"}]).key == "SECOND"
    keys = [r.headers["Idempotency-Key"] for r in server.sent(POST)]
    assert len(keys) == 5
    assert len(set(keys[:4])) == 1
    assert keys[4] != keys[0]
    bodies = [r.content for r in server.sent(POST)]
    assert len(set(bodies[:4])) == 1  # the same request, sent again unchanged


def test_patch_is_keyed_and_get_is_not(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on("PATCH /v1/transactions/PT-1", accepted())
    server.on("GET /v1/jobs/insight/status/KEY", job("Completed"))
    with server.client(fake_time) as client:
        client.patch("PT-1", [{"op": "remove", "path": "/comments"}])
        client.status("KEY")
    [patch] = server.sent("PATCH /v1/transactions/PT-1")
    assert patch.headers["content-type"] == "application/json-patch+json"
    assert len(patch.headers["idempotency-key"]) == 36
    [get] = server.sent("GET /v1/jobs/insight/status/KEY")
    assert "idempotency-key" not in get.headers


def test_without_retry_after_the_backoff_doubles_up_to_the_cap(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.on(POST, *[error(503, "service.unavailable", transient=True)] * 7, accepted())
    policy = RetryPolicy(max_attempts=8, base_delay=1.0, max_delay=5.0)
    with server.client(fake_time, retry=policy, random=lambda: 0.999999) as client:
        client.submit([{"externalId": "PT-1"}])
    assert fake_time.sleeps == pytest.approx([1, 2, 4, 5, 5, 5, 5], rel=1e-5)


def test_the_backoff_is_jittered_between_half_and_the_whole_pause(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.on(POST, *[error(503, "service.unavailable", transient=True)] * 4, accepted())
    draws = iter([0.0, 0.5, 0.25, 0.999])
    policy = RetryPolicy(max_attempts=5, base_delay=2.0, max_delay=30.0)
    with server.client(fake_time, retry=policy, random=lambda: next(draws)) as client:
        client.submit([{"externalId": "PT-1"}])
    # ceilings 2, 4, 8, 16 scaled by 0.5 + draw / 2
    assert fake_time.sleeps == pytest.approx([1.0, 3.0, 5.0, 15.992])


def test_retry_after_wins_over_backoff_but_is_capped(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(
        POST,
        error(503, "service.unavailable", transient=True, headers={"Retry-After": "3"}),
        error(503, "service.unavailable", transient=True, headers={"Retry-After": "86400"}),
        accepted(),
    )
    with server.client(fake_time, retry=RetryPolicy(max_retry_after=60)) as client:
        client.submit([{"externalId": "PT-1"}])
    assert fake_time.sleeps == [3.0, 60.0]


def test_any_error_marked_transient_is_retried(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(POST, error(500, "internal.server.failure", transient=True), accepted())
    with server.client(fake_time) as client:
        client.submit([{"externalId": "PT-1"}])
    assert len(server.sent(POST)) == 2


def test_a_key_still_being_stored_is_retried_with_the_same_key(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    in_use = error(409, "idempotency.key.in.use", transient=True, headers={"Retry-After": "1"})
    server.on(POST, in_use, accepted("FIRST"))
    with server.client(fake_time) as client:
        assert client.submit([{"externalId": "PT-1"}]).key == "FIRST"
    assert fake_time.sleeps == [1.0]
    assert len({r.headers["Idempotency-Key"] for r in server.sent(POST)}) == 1


def test_idempotency_conflicts_are_typed(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(
        POST,
        error(422, "idempotency.key.reused"),
        *[error(409, "idempotency.key.in.use", transient=True)] * 5,
    )
    with server.client(fake_time) as client:
        with pytest.raises(IdempotencyKeyReused) as reused:
            client.submit([{"externalId": "PT-1"}])
        with pytest.raises(Conflict) as in_use:
            client.submit([{"externalId": "PT-2"}])
    assert (reused.value.status, reused.value.code, reused.value.transient) == (
        422,
        "idempotency.key.reused",
        False,
    )
    assert (in_use.value.status, in_use.value.transient) == (409, True)
    assert len(server.sent(POST)) == 6  # the 422 at once, the 409 after every retry


def test_errors_that_are_not_transient_are_raised_at_once(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.on(POST, error(500, "internal.server.failure"))
    with server.client(fake_time) as client, pytest.raises(ServerError) as caught:
        client.submit([{"externalId": "PT-1"}])
    assert (caught.value.status, caught.value.code, caught.value.tracking_id) == (
        500,
        "internal.server.failure",
        "track-500",
    )
    assert fake_time.sleeps == []
    assert len(server.sent(POST)) == 1


def test_a_validation_error_carries_the_details(server: ScriptedServer, fake_time: FakeTime) -> None:
    answer = httpx.Response(
        400,
        json={
            "code": "request.validation.failure",
            "message": "Request validation failed",
            "trackingId": "t-1",
            "transient": False,
            "errors": [{"field": "limit", "location": "query", "reason": "must be between 1 and 50"}],
        },
    )
    server.on("GET /v1/transactions", answer)
    with server.client(fake_time) as client, pytest.raises(ValidationError) as caught:
        list(client.transactions(limit=99))
    error_ = caught.value
    assert [(e.field, e.location, e.reason) for e in error_.errors] == [
        ("limit", "query", "must be between 1 and 50")
    ]
    assert str(error_) == (
        "400 request.validation.failure: Request validation failed (limit: must be between 1 and 50)"
        " [tracking id t-1]"
    )


def test_after_the_last_attempt_the_typed_error_is_raised(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.on(POST, error(503, "service.unavailable", transient=True))
    with (
        server.client(fake_time, retry=RetryPolicy(max_attempts=3)) as client,
        pytest.raises(ServiceUnavailable),
    ):
        client.submit([{"externalId": "PT-1"}])
    assert len(server.sent(POST)) == 3
    assert len(fake_time.sleeps) == 2


def test_429_after_the_last_attempt_is_rate_limited(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.on(POST, error(429, "request.rate.limited", transient=True, headers={"Retry-After": "1"}))
    with server.client(fake_time, retry=RetryPolicy(max_attempts=2)) as client, pytest.raises(RateLimited):
        client.submit([{"externalId": "PT-1"}])


def test_connection_errors_are_retried_then_raised_as_connection_failed(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.on(POST, httpx.ConnectError("connection refused"))
    client = server.client(fake_time, retry=RetryPolicy(max_attempts=4))
    with client, pytest.raises(ConnectionFailed) as caught:
        client.submit([{"externalId": "PT-1"}])
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(server.sent(POST)) == 4
    assert "/v1/transactions" in str(caught.value)


def test_a_proxy_503_without_the_contract_body_is_retried(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    server.on(POST, httpx.Response(503, text="<html>busy</html>"), accepted())
    with server.client(fake_time) as client:
        client.submit([{"externalId": "PT-1"}])
    assert len(server.sent(POST)) == 2


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value})

    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    assert retry_after(answer("5")) == 5.0
    assert retry_after(answer("Sun, 29 Nov 2026 12:00:30 GMT"), now=lambda: now) == 30.0
    assert retry_after(answer("Sun, 29 Nov 2026 11:00:00 GMT"), now=lambda: now) == 0.0
    assert retry_after(answer("soon")) is None
    assert retry_after(httpx.Response(503)) is None


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(base_delay=10, max_delay=1)
