"""IP allow-lists: spec section 2, rule 6, checked after rules 1-5 on every /v1 route."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx.domain.credentials import PRODUCT
from pendingtx.domain.networks import parse_networks
from pendingtx.services import credentials
from tests.api.peers import Site, serving, serving_with, token_request
from tests.conftest import AppCreds, assert_error
from tests.support import FakeClock, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

ACCESS_FAILURE = "gateway.access.failure"
AUTH_FAILURE = "gateway.authentication.failure"
INSIDE = ["10.1.2.3", "192.0.2.77", "2001:db8:5::1", "::ffff:10.9.9.9"]
OUTSIDE = ["11.0.0.1", "192.0.2.78", "2001:db9::1", "::1"]


@pytest.fixture
def site(runtime: Runtime) -> Iterator[Site]:
    yield from serving(runtime)


@pytest.fixture
def site_with(settings: Settings, clock: FakeClock) -> Iterator[Callable[..., Site]]:
    yield from serving_with(settings, clock)


def register(
    runtime: Runtime,
    *allowed: str,
    name: str = "listed-app",
    products: tuple[str, ...] = (PRODUCT,),
) -> AppCreds:
    new = credentials.create_app(
        runtime.uow,
        name=name,
        organization="acme",
        products=products,
        clock=runtime.clock,
        allowed_networks=parse_networks(allowed),
    )
    return AppCreds(new.app_key, new.app_secret, "acme")


@pytest.fixture
def listed(runtime: Runtime) -> AppCreds:
    """An application that may call only from 10.0.0.0/8, 192.0.2.77 and 2001:db8::/32."""
    return register(runtime, "10.0.0.0/8", "192.0.2.77", "2001:db8::/32")


def bearer(client: TestClient, creds: AppCreds) -> dict[str, str]:
    """Headers of a freshly minted token of the application (the token endpoint is not allow-listed)."""
    answer = token_request(client, creds.app_key, creds.app_secret)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}", "AppKey": creds.app_key}


ROUTES = ["GET status", "POST /v1/transactions", "POST /v1/transfers", "GET /v1/transactions"]


def call(route: str, client: TestClient, headers: dict[str, str], status_url: str) -> Any:
    if route == "GET status":
        return client.get(status_url, headers=headers)
    if route == "POST /v1/transactions":
        return client.post("/v1/transactions", json=[record("AL-1")], headers=headers)
    if route == "POST /v1/transfers":
        transfer = record("AL-2", type="Full Transfer", amount=None, toInvestorExternalId="INV-2")
        return client.post("/v1/transfers", json=transfer, headers=headers)
    return client.get("/v1/transactions", headers=headers)


@pytest.fixture
def status_url(site: Site, listed: AppCreds) -> str:
    inside = site.at(INSIDE[0])
    accepted = inside.post("/v1/transactions", json=[record("AL-0")], headers=bearer(inside, listed))
    assert accepted.status_code == 202, accepted.text
    return str(accepted.headers["location"])


@pytest.mark.parametrize("route", ROUTES)
def test_callers_on_the_list_are_served(site: Site, listed: AppCreds, status_url: str, route: str) -> None:
    for host in INSIDE:
        client = site.at(host)
        answer = call(route, client, bearer(client, listed), status_url)
        assert answer.status_code in (200, 202), (host, answer.text)


@pytest.mark.parametrize("route", ROUTES)
def test_callers_off_the_list_get_403_access_failure(
    site: Site, listed: AppCreds, status_url: str, route: str
) -> None:
    for host in OUTSIDE:
        client = site.at(host)
        body = assert_error(call(route, client, bearer(client, listed), status_url), 403, ACCESS_FAILURE)
        assert host.removeprefix("::ffff:") in body["message"]


def test_a_token_minted_inside_is_refused_outside(site: Site, listed: AppCreds, status_url: str) -> None:
    headers = bearer(site.at(INSIDE[0]), listed)
    assert site.at(INSIDE[1]).get(status_url, headers=headers).status_code == 200
    assert_error(site.at(OUTSIDE[0]).get(status_url, headers=headers), 403, ACCESS_FAILURE)


def test_an_unknown_address_is_on_no_list(client: TestClient, listed: AppCreds) -> None:
    # Starlette's TestClient connects as "testclient", which is no address.
    body = assert_error(client.get("/v1/transactions", headers=bearer(client, listed)), 403, ACCESS_FAILURE)
    assert "unknown" in body["message"]


def test_applications_without_a_list_accept_any_address(
    site: Site, client: TestClient, app_creds: AppCreds
) -> None:
    for each in [*(site.at(host) for host in INSIDE + OUTSIDE), client]:
        assert each.get("/v1/transactions", headers=bearer(each, app_creds)).status_code == 200


def test_a_changed_list_applies_at_once_to_live_tokens(
    site: Site, runtime: Runtime, listed: AppCreds
) -> None:
    outside = site.at(OUTSIDE[0])
    headers = bearer(outside, listed)
    assert_error(outside.get("/v1/transactions", headers=headers), 403, ACCESS_FAILURE)
    assert credentials.set_allowed_networks(runtime.uow, listed.app_key, parse_networks([OUTSIDE[0]]))
    assert outside.get("/v1/transactions", headers=headers).status_code == 200
    assert_error(site.at(INSIDE[0]).get("/v1/transactions", headers=headers), 403, ACCESS_FAILURE)
    assert credentials.set_allowed_networks(runtime.uow, listed.app_key, ())
    assert site.at(INSIDE[0]).get("/v1/transactions", headers=headers).status_code == 200
    assert not credentials.set_allowed_networks(runtime.uow, "no-such-key", ())


# --- rule order -------------------------------------------------------------------------------------


def test_rules_1_to_4_come_before_rule_6(
    site: Site, runtime: Runtime, listed: AppCreds, clock: FakeClock
) -> None:
    outside = site.at(OUTSIDE[0])
    headers = bearer(outside, listed)
    # Rule 1: no token.
    assert_error(outside.get("/v1/transactions", headers={"AppKey": listed.app_key}), 401, AUTH_FAILURE)
    # Rule 3: another AppKey.
    assert_error(outside.get("/v1/transactions", headers={**headers, "AppKey": "x"}), 401, AUTH_FAILURE)
    # Rule 4: a disabled application with a bad address gets 401, not 403.
    credentials.set_disabled(runtime.uow, listed.app_key, disabled=True)
    body = assert_error(outside.get("/v1/transactions", headers=headers), 401, AUTH_FAILURE)
    assert "disabled" in body["message"].lower()
    credentials.set_disabled(runtime.uow, listed.app_key, disabled=False)
    assert_error(outside.get("/v1/transactions", headers=headers), 403, ACCESS_FAILURE)
    # Rule 2: an expired token.
    clock.advance(runtime.settings.token_ttl_seconds)
    body = assert_error(outside.get("/v1/transactions", headers=headers), 401, AUTH_FAILURE)
    assert body["message"] == "Access Token expired"


def test_rule_5_comes_before_rule_6(site: Site, runtime: Runtime) -> None:
    unentitled = register(runtime, "10.0.0.0/8", name="no-product-app", products=("another-product",))
    outside = site.at(OUTSIDE[0])
    body = assert_error(
        outside.get("/v1/transactions", headers=bearer(outside, unentitled)), 403, AUTH_FAILURE
    )
    assert body["message"] == "Invalid ApiKey for given resource"


def test_refused_callers_do_not_spend_the_budget(
    site_with: Callable[..., Site], runtime: Runtime, listed: AppCreds
) -> None:
    served = site_with(app_requests_per_minute=2)
    outside, inside = served.at(OUTSIDE[0]), served.at(INSIDE[0])
    headers = bearer(inside, listed)
    for _ in range(3):
        assert_error(outside.get("/v1/transactions", headers=headers), 403, ACCESS_FAILURE)
    for _ in range(2):
        assert inside.get("/v1/transactions", headers=headers).status_code == 200
    assert_error(inside.get("/v1/transactions", headers=headers), 429, "request.rate.limited")
    # Rule 6 is still decided before the budget.
    assert_error(outside.get("/v1/transactions", headers=headers), 403, ACCESS_FAILURE)


# --- behind proxies ---------------------------------------------------------------------------------


def test_forwarded_for_from_an_untrusted_peer_is_ignored(site: Site, listed: AppCreds) -> None:
    outside = site.at(OUTSIDE[0])
    headers = {**bearer(outside, listed), "X-Forwarded-For": INSIDE[0]}
    assert_error(outside.get("/v1/transactions", headers=headers), 403, ACCESS_FAILURE)


def test_forwarded_for_from_a_trusted_proxy_names_the_caller(
    site_with: Callable[..., Site], listed: AppCreds, status_url: str
) -> None:
    proxy = site_with(trusted_proxies="172.16.0.0/12").at("172.16.0.2")
    headers = bearer(proxy, listed)
    for route in ROUTES:
        answer = call(route, proxy, {**headers, "X-Forwarded-For": INSIDE[0]}, status_url)
        assert answer.status_code in (200, 202), answer.text
        answer = call(route, proxy, {**headers, "X-Forwarded-For": OUTSIDE[0]}, status_url)
        assert_error(answer, 403, ACCESS_FAILURE)
    # A caller that writes an allowed address itself is still known by the address the proxy saw.
    spoofed = {**headers, "X-Forwarded-For": f"{INSIDE[0]}, {OUTSIDE[0]}"}
    assert_error(proxy.get("/v1/transactions", headers=spoofed), 403, ACCESS_FAILURE)
    # Without the header, the proxy itself (not on the list) is the caller.
    assert_error(proxy.get("/v1/transactions", headers=headers), 403, ACCESS_FAILURE)
