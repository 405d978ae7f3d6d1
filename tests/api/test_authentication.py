"""Authentication and authorization of every /v1 route: rules 1-5 of spec section 2, in order.

Each rule's test also breaks every later rule it can, to show the first failing rule decides.
Tokens here live 600 s in all and 120 s idle (the idle stamp is then written at most every 30 s).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx.services import credentials
from tests.conftest import AppCreds, assert_error, mint, register
from tests.support import FakeClock, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

TTL = 600
IDLE = 120
EXPIRED = "Access Token expired"
AUTH_FAILURE = "gateway.authentication.failure"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Shortened token lifetimes for this module."""
    return settings.replace(token_ttl_seconds=TTL, token_idle_seconds=IDLE)


@dataclass(frozen=True)
class V1Route:
    """One /v1 route, called with a valid request apart from the headers under test."""

    name: str
    ok: int
    send: Callable[[Mapping[str, str]], Any]

    def __call__(self, headers: Mapping[str, str]) -> Any:
        return self.send(headers)


@pytest.fixture(params=["GET status", "POST /v1/transactions", "POST /v1/transfers"])
def route(request: pytest.FixtureRequest, client: TestClient, headers: dict[str, str]) -> V1Route:
    name = request.param
    if name == "GET status":
        accepted = client.post("/v1/transactions", json=record("AUTH-1"), headers=headers)
        assert accepted.status_code == 202
        url = accepted.headers["location"]
        return V1Route(name, 200, lambda h: client.get(url, headers=dict(h)))
    if name == "POST /v1/transactions":
        return V1Route(
            name, 202, lambda h: client.post("/v1/transactions", json=[record("AUTH-2")], headers=dict(h))
        )
    transfer = record("AUTH-3", type="Full Transfer", amount=None, toInvestorExternalId="INV-2")
    return V1Route(name, 202, lambda h: client.post("/v1/transfers", json=transfer, headers=dict(h)))


def bearer(token: str, app_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "AppKey": app_key}


def rule_of(answer: Any) -> int:
    """Which of rules 1-5 an authentication failure reports (the 401 messages tell rules 1-4 apart)."""
    if answer.status_code == 403:
        assert_error(answer, 403, AUTH_FAILURE)
        return 5
    message = assert_error(answer, 401, AUTH_FAILURE)["message"]
    if message == EXPIRED:
        return 2
    if "apikey" in message.lower() or "appkey" in message.lower():
        return 3
    if "disabled" in message.lower():
        return 4
    return 1


def revoke(client: TestClient, creds: AppCreds, token: str) -> None:
    answer = client.post(
        "/v2/oauthtoken",
        data={"grant_type": "invalidate_token", "token": token},
        headers={"Authorization": creds.basic},
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def unentitled(runtime: Runtime) -> AppCreds:
    """An application of the same organization that is not entitled to pending-transactions."""
    return register(runtime, name="no-product-app", products=("another-product",))


# --- rule 1: no, malformed, unknown or revoked token -----------------------------------------------


def test_rule1_missing_authorization(route: V1Route, app_creds: AppCreds, headers: dict[str, str]) -> None:
    assert route(headers).status_code == route.ok
    assert rule_of(route({"AppKey": app_creds.app_key})) == 1
    # Even with every later check failing too.
    assert rule_of(route({})) == 1


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "{token}",
        "Basic {token}",
        "Token {token}",
        "Bearer {token} extra",
        "Bearer{token}",
    ],
)
def test_rule1_malformed_authorization(
    route: V1Route, app_creds: AppCreds, token: str, authorization: str
) -> None:
    header = authorization.format(token=token)
    assert rule_of(route({"Authorization": header, "AppKey": app_creds.app_key})) == 1
    assert route(bearer(token, app_creds.app_key)).status_code == route.ok


def test_rule1_unknown_token(route: V1Route, app_creds: AppCreds) -> None:
    assert rule_of(route(bearer(secrets.token_urlsafe(32), app_creds.app_key))) == 1
    assert rule_of(route({"Authorization": f"Bearer {secrets.token_urlsafe(32)}"})) == 1


def test_rule1_revoked_token(
    route: V1Route, client: TestClient, runtime: Runtime, clock: FakeClock, app_creds: AppCreds, token: str
) -> None:
    assert route(bearer(token, app_creds.app_key)).status_code == route.ok
    revoke(client, app_creds, token)
    assert rule_of(route(bearer(token, app_creds.app_key))) == 1
    # Revoked and also expired, without AppKey, app disabled: still rule 1.
    clock.advance(TTL)
    assert credentials.set_disabled(runtime.uow, app_creds.app_key)
    assert rule_of(route({"Authorization": f"Bearer {token}"})) == 1


# --- rule 2: absolute and idle lifetimes -----------------------------------------------------------


def test_rule2_idle_lifetime(route: V1Route, clock: FakeClock, app_creds: AppCreds, token: str) -> None:
    clock.advance(IDLE)  # idle for exactly the idle lifetime: still alive
    assert route(bearer(token, app_creds.app_key)).status_code == route.ok
    clock.advance(IDLE + 1)  # idle for longer than the idle lifetime
    answer = route(bearer(token, app_creds.app_key))
    assert rule_of(answer) == 2
    assert answer.json()["message"] == EXPIRED


def test_rule2_regular_use_keeps_an_idle_token_alive(
    route: V1Route, clock: FakeClock, app_creds: AppCreds, token: str
) -> None:
    for _ in range(5):  # 500 s in all, over four idle lifetimes, but never idle for more than 100 s
        clock.advance(100)
        assert route(bearer(token, app_creds.app_key)).status_code == route.ok


def test_rule2_absolute_lifetime_ends_even_a_token_in_use(
    route: V1Route, clock: FakeClock, app_creds: AppCreds, token: str
) -> None:
    for _ in range(5):
        clock.advance(100)
        assert route(bearer(token, app_creds.app_key)).status_code == route.ok
    clock.advance(99)  # 599 s old
    assert route(bearer(token, app_creds.app_key)).status_code == route.ok
    clock.advance(1)  # 600 s old: past its absolute lifetime though used a second ago
    answer = route(bearer(token, app_creds.app_key))
    assert rule_of(answer) == 2
    assert answer.json()["message"] == EXPIRED


def test_rule2_comes_before_rules_3_to_5(
    route: V1Route,
    client: TestClient,
    runtime: Runtime,
    clock: FakeClock,
    unentitled: AppCreds,
    other_creds: AppCreds,
) -> None:
    token = mint(client, unentitled)
    assert rule_of(route(bearer(token, unentitled.app_key))) == 5
    assert credentials.set_disabled(runtime.uow, unentitled.app_key)
    clock.advance(IDLE + 1)
    assert rule_of(route({"Authorization": f"Bearer {token}"})) == 2
    assert rule_of(route(bearer(token, other_creds.app_key))) == 2


# --- rule 3: AppKey missing or not the token's application -----------------------------------------


def test_rule3_missing_appkey(route: V1Route, token: str) -> None:
    assert rule_of(route({"Authorization": f"Bearer {token}"})) == 3


@pytest.mark.parametrize("whose", ["same organization", "other organization", "unknown"])
def test_rule3_appkey_of_another_application(
    route: V1Route, runtime: Runtime, other_creds: AppCreds, token: str, whose: str
) -> None:
    key = {
        "same organization": lambda: register(runtime, name="sibling-app").app_key,
        "other organization": lambda: other_creds.app_key,
        "unknown": lambda: "0" * 32,
    }[whose]()
    assert rule_of(route(bearer(token, key))) == 3


def test_rule3_comes_before_rules_4_and_5(
    route: V1Route, client: TestClient, runtime: Runtime, unentitled: AppCreds, app_creds: AppCreds
) -> None:
    token = mint(client, unentitled)
    assert rule_of(route(bearer(token, app_creds.app_key))) == 3  # not 5
    assert credentials.set_disabled(runtime.uow, unentitled.app_key)
    assert rule_of(route(bearer(token, app_creds.app_key))) == 3  # not 4
    assert rule_of(route({"Authorization": f"Bearer {token}"})) == 3


# --- rule 4: disabled application ------------------------------------------------------------------


def test_rule4_disabled_application(
    route: V1Route, runtime: Runtime, app_creds: AppCreds, token: str
) -> None:
    assert route(bearer(token, app_creds.app_key)).status_code == route.ok
    assert credentials.set_disabled(runtime.uow, app_creds.app_key)
    assert rule_of(route(bearer(token, app_creds.app_key))) == 4
    assert credentials.set_disabled(runtime.uow, app_creds.app_key, disabled=False)
    assert route(bearer(token, app_creds.app_key)).status_code == route.ok


def test_rule4_comes_before_rule5(
    route: V1Route, client: TestClient, runtime: Runtime, unentitled: AppCreds
) -> None:
    token = mint(client, unentitled)
    assert credentials.set_disabled(runtime.uow, unentitled.app_key)
    assert rule_of(route(bearer(token, unentitled.app_key))) == 4


# --- rule 5: not entitled to the product -----------------------------------------------------------


@pytest.mark.parametrize("products", [(), ("another-product",)])
def test_rule5_application_not_entitled(
    route: V1Route, client: TestClient, runtime: Runtime, products: tuple[str, ...]
) -> None:
    creds = register(runtime, name="unentitled-app", products=products)
    answer = route(bearer(mint(client, creds), creds.app_key))
    body = assert_error(answer, 403, "gateway.authentication.failure")
    assert body["message"] == "Invalid ApiKey for given resource"


# --- header names and the scheme are case-insensitive ----------------------------------------------


@pytest.mark.parametrize(
    ("authorization_name", "scheme", "appkey_name"),
    [
        ("authorization", "Bearer", "appkey"),
        ("AUTHORIZATION", "bearer", "APPKEY"),
        ("Authorization", "BEARER", "appKey"),
    ],
)
def test_header_names_and_scheme_are_case_insensitive(
    route: V1Route,
    app_creds: AppCreds,
    token: str,
    authorization_name: str,
    scheme: str,
    appkey_name: str,
) -> None:
    answer = route({authorization_name: f"{scheme} {token}", appkey_name: app_creds.app_key})
    assert answer.status_code == route.ok, answer.text
