"""Abuse limits: lockout after failed client authentications, and each application's /v1 budgets.

In this module an AppKey or address is locked out after 3 failures within 300 s, an application may
make 3 requests and 5 status reads per minute, and time moves only with the fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from tests.api.peers import Site, serving, serving_with, token_request
from tests.conftest import AppCreds, assert_error, mint, register
from tests.support import FakeClock, basic, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

LIMIT = 3
WINDOW = 300
REQUESTS = 3
STATUS_READS = 5
RATE_LIMITED = "request.rate.limited"
WRONG = "not-the-secret"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(
        auth_failure_limit=LIMIT,
        auth_failure_window_seconds=WINDOW,
        app_requests_per_minute=REQUESTS,
        app_status_reads_per_minute=STATUS_READS,
    )


@pytest.fixture
def site(runtime: Runtime) -> Iterator[Site]:
    yield from serving(runtime)


@pytest.fixture
def site_with(settings: Settings, clock: FakeClock) -> Iterator[Callable[..., Site]]:
    yield from serving_with(settings, clock)


def locked_out(answer: Any) -> int:
    """Check the answer is the lockout's 429 (an OAuth-shaped error body); return its Retry-After."""
    body = assert_error(answer, 429, RATE_LIMITED, oauth=True)
    assert body["transient"] is True
    return int(answer.headers["retry-after"])


def over_budget(answer: Any) -> int:
    """Check the answer is a /v1 429; return its Retry-After."""
    body = assert_error(answer, 429, RATE_LIMITED)
    assert body["transient"] is True
    return int(answer.headers["retry-after"])


def fail(client: TestClient, app_key: str, times: int = 1) -> None:
    for _ in range(times):
        assert_error(token_request(client, app_key, WRONG), 401, "gateway.authentication.failure", oauth=True)


# --- failed client authentications -------------------------------------------------------------------


def test_failures_below_the_limit_do_not_lock_out(site: Site, app_creds: AppCreds) -> None:
    client = site.at("198.51.100.7")
    fail(client, app_creds.app_key, LIMIT - 1)
    assert token_request(client, app_creds.app_key, app_creds.app_secret).status_code == 200


def test_a_lockout_refuses_even_the_right_secret_until_the_window_passes(
    site: Site, app_creds: AppCreds, clock: FakeClock
) -> None:
    client = site.at("198.51.100.7")
    fail(client, app_creds.app_key, LIMIT)
    assert locked_out(token_request(client, app_creds.app_key, app_creds.app_secret)) == WINDOW
    clock.advance(120)
    assert locked_out(token_request(client, app_creds.app_key, app_creds.app_secret)) == WINDOW - 120
    clock.advance(WINDOW - 120 - 0.5)
    assert locked_out(token_request(client, app_creds.app_key, app_creds.app_secret)) == 1
    clock.advance(0.5)
    assert token_request(client, app_creds.app_key, app_creds.app_secret).status_code == 200


def test_the_window_opens_at_the_first_failure(site: Site, app_creds: AppCreds, clock: FakeClock) -> None:
    client = site.at("198.51.100.7")
    fail(client, app_creds.app_key)
    clock.advance(100)
    fail(client, app_creds.app_key)
    clock.advance(100)
    fail(client, app_creds.app_key)
    assert locked_out(token_request(client, app_creds.app_key, app_creds.app_secret)) == WINDOW - 200


def test_failures_of_a_past_window_do_not_add_up(site: Site, app_creds: AppCreds, clock: FakeClock) -> None:
    client = site.at("198.51.100.7")
    fail(client, app_creds.app_key, LIMIT - 1)
    clock.advance(WINDOW)
    fail(client, app_creds.app_key, LIMIT - 1)
    assert token_request(client, app_creds.app_key, app_creds.app_secret).status_code == 200


def test_attempts_refused_during_a_lockout_neither_count_nor_extend_it(
    site: Site, app_creds: AppCreds, clock: FakeClock
) -> None:
    client = site.at("198.51.100.7")
    fail(client, app_creds.app_key, LIMIT)
    for waited in range(50, 300, 50):
        clock.advance(50)
        assert locked_out(token_request(client, app_creds.app_key, WRONG)) == WINDOW - waited
    clock.advance(WINDOW - 250)
    assert token_request(client, app_creds.app_key, app_creds.app_secret).status_code == 200
    # A new window: the limit counts afresh.
    fail(client, app_creds.app_key, LIMIT - 1)
    assert token_request(client, app_creds.app_key, app_creds.app_secret).status_code == 200


def test_failures_are_counted_per_app_key_across_addresses(
    site: Site, runtime: Runtime, app_creds: AppCreds
) -> None:
    other = register(runtime, name="other-app")
    hosts = [f"198.51.100.{i}" for i in range(1, LIMIT + 1)]
    for host in hosts:
        fail(site.at(host), app_creds.app_key)
    # The AppKey is locked out wherever its caller is...
    assert (
        locked_out(token_request(site.at("203.0.113.50"), app_creds.app_key, app_creds.app_secret)) == WINDOW
    )
    # ...while each address, with a single failure, still serves other applications.
    for host in hosts:
        assert token_request(site.at(host), other.app_key, other.app_secret).status_code == 200


def test_failures_are_counted_per_address_across_app_keys(
    site: Site, runtime: Runtime, app_creds: AppCreds
) -> None:
    other = register(runtime, name="other-app")
    attacker = site.at("198.51.100.66")
    for key in (app_creds.app_key, other.app_key, "no-such-key"):
        fail(attacker, key)
    # The address is locked out, whichever application it authenticates as...
    for creds in (app_creds, other):
        assert locked_out(token_request(attacker, creds.app_key, creds.app_secret)) == WINDOW
    # ...while the applications, with one failure each, still work from elsewhere.
    for creds in (app_creds, other):
        assert token_request(site.at("203.0.113.50"), creds.app_key, creds.app_secret).status_code == 200


def test_ipv6_callers_are_counted_per_64_network(site: Site, app_creds: AppCreds) -> None:
    for i in range(1, LIMIT + 1):
        fail(site.at(f"2001:db8:1:1::{i}"), f"guess-{i}")
    creds = (app_creds.app_key, app_creds.app_secret)
    assert locked_out(token_request(site.at("2001:db8:1:1::ffff"), *creds)) == WINDOW
    assert token_request(site.at("2001:db8:1:2::1"), *creds).status_code == 200


def test_an_unknown_address_is_counted_by_app_key_only(client: TestClient, runtime: Runtime) -> None:
    # Starlette's TestClient connects as "testclient", which is no address.
    for i in range(LIMIT + 2):
        fail(client, f"guess-{i}")
    other = register(runtime, name="other-app")
    assert token_request(client, other.app_key, other.app_secret).status_code == 200


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted(
    site_with: Callable[..., Site], app_creds: AppCreds
) -> None:
    proxy = site_with(trusted_proxies="10.0.0.0/8").at("10.0.0.2")
    attacker = {"X-Forwarded-For": "198.51.100.66"}
    for i in range(LIMIT):
        answer = proxy.post(
            "/v2/oauthtoken",
            data={"grant_type": "client_credentials", "client_id": f"guess-{i}", "client_secret": WRONG},
            headers=attacker,
        )
        assert answer.status_code == 401
    form = {
        "grant_type": "client_credentials",
        "client_id": app_creds.app_key,
        "client_secret": app_creds.app_secret,
    }
    assert locked_out(proxy.post("/v2/oauthtoken", data=form, headers=attacker)) == WINDOW
    # Another client behind the same proxy, and the proxy's own address, are not locked out.
    assert (
        proxy.post("/v2/oauthtoken", data=form, headers={"X-Forwarded-For": "198.51.100.67"}).status_code
        == 200
    )
    assert proxy.post("/v2/oauthtoken", data=form).status_code == 200


def test_without_trusted_proxies_forwarded_for_does_not_dodge_the_lockout(
    site: Site, app_creds: AppCreds
) -> None:
    client = site.at("198.51.100.66")
    for i in range(LIMIT):
        spoofed = {"Authorization": basic(f"guess-{i}", WRONG), "X-Forwarded-For": f"192.0.2.{i}"}
        answer = client.post("/v2/oauthtoken", data={"grant_type": "client_credentials"}, headers=spoofed)
        assert answer.status_code == 401
    spoofed = {"Authorization": app_creds.basic, "X-Forwarded-For": "192.0.2.200"}
    answer = client.post("/v2/oauthtoken", data={"grant_type": "client_credentials"}, headers=spoofed)
    assert locked_out(answer) == WINDOW


def test_revocation_is_locked_out_too(site: Site, app_creds: AppCreds) -> None:
    client = site.at("198.51.100.7")
    token = token_request(client, app_creds.app_key, app_creds.app_secret).json()["access_token"]
    fail(client, app_creds.app_key, LIMIT)
    answer = token_request(
        client, app_creds.app_key, app_creds.app_secret, grant_type="invalidate_token", token=token
    )
    assert locked_out(answer) == WINDOW


def test_malformed_credentials_are_not_counted(site: Site, app_creds: AppCreds) -> None:
    client = site.at("198.51.100.7")
    for _ in range(LIMIT + 1):
        answer = client.post(
            "/v2/oauthtoken",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic !!!"},
        )
        assert answer.status_code == 401
    assert token_request(client, app_creds.app_key, app_creds.app_secret).status_code == 200


def test_a_lockout_holds_across_processes_with_database_counters(
    site_with: Callable[..., Site], app_creds: AppCreds
) -> None:
    first, second = (site_with(rate_limit_storage="database") for _ in range(2))
    fail(first.at("198.51.100.7"), app_creds.app_key, LIMIT)
    assert (
        locked_out(token_request(second.at("203.0.113.9"), app_creds.app_key, app_creds.app_secret)) == WINDOW
    )


def test_by_default_counts_are_shared_on_postgresql_and_kept_per_process_on_sqlite(
    site_with: Callable[..., Site], app_creds: AppCreds, settings: Settings
) -> None:
    first, second = site_with(), site_with()
    fail(first.at("198.51.100.7"), app_creds.app_key, LIMIT)
    answer = token_request(second.at("198.51.100.7"), app_creds.app_key, app_creds.app_secret)
    if settings.database_url.startswith("sqlite"):
        assert answer.status_code == 200
    else:
        assert locked_out(answer) == WINDOW


# --- /v1 budgets ----------------------------------------------------------------------------------


def v1_request(client: TestClient, headers: dict[str, str], n: int) -> Any:
    """One of the budgeted /v1 requests other than status reads, in turn."""
    kind = n % 3
    if kind == 0:
        return client.post("/v1/transactions", json=[record(f"RL-{n}")], headers=headers)
    if kind == 1:
        return client.get("/v1/transactions", headers=headers)
    transfer = record(f"RL-{n}", type="Full Transfer", amount=None, toInvestorExternalId="INV-2")
    return client.post("/v1/transfers", json=transfer, headers=headers)


def assert_ok(answer: Any) -> None:
    assert answer.status_code in (200, 202), answer.text


def test_requests_over_the_budget_get_429_until_the_minute_passes(
    client: TestClient, headers: dict[str, str], clock: FakeClock
) -> None:
    for n in range(REQUESTS):
        assert_ok(v1_request(client, headers, n))
    for n in range(3):
        assert over_budget(v1_request(client, headers, n)) == 60
    clock.advance(59.5)
    assert over_budget(v1_request(client, headers, 0)) == 1
    clock.advance(0.5)
    for n in range(REQUESTS):
        assert_ok(v1_request(client, headers, n))
    assert over_budget(v1_request(client, headers, 0)) == 60


def test_the_minute_opens_at_the_first_request(
    client: TestClient, headers: dict[str, str], clock: FakeClock
) -> None:
    assert_ok(v1_request(client, headers, 0))
    clock.advance(40)
    for n in range(1, REQUESTS):
        assert_ok(v1_request(client, headers, n))
    assert over_budget(v1_request(client, headers, 0)) == 20


def status_url(client: TestClient, headers: dict[str, str]) -> str:
    accepted = client.post("/v1/transactions", json=[record("RL-STATUS")], headers=headers)
    assert accepted.status_code == 202
    return str(accepted.headers["location"])


def test_status_reads_have_their_own_larger_budget(
    client: TestClient, headers: dict[str, str], clock: FakeClock
) -> None:
    url = status_url(client, headers)  # one request of the 3
    for n in range(1, REQUESTS):
        assert_ok(v1_request(client, headers, n))
    assert over_budget(v1_request(client, headers, 0)) == 60
    # The request budget is spent, the status-read budget is not.
    for _ in range(STATUS_READS):
        assert client.get(url, headers=headers).status_code == 200
    clock.advance(30)
    assert over_budget(client.get(url, headers=headers)) == 30
    clock.advance(30)
    # Status reads did not spend the request budget either.
    for _ in range(STATUS_READS):
        assert client.get(url, headers=headers).status_code == 200
    for n in range(REQUESTS):
        assert_ok(v1_request(client, headers, n))


def test_reads_of_unknown_jobs_spend_the_status_budget(client: TestClient, headers: dict[str, str]) -> None:
    for _ in range(STATUS_READS):
        assert_error(
            client.get("/v1/jobs/insight/status/no-such-key", headers=headers), 404, "resource.not.found"
        )
    assert over_budget(client.get("/v1/jobs/insight/status/no-such-key", headers=headers)) == 60


def test_each_application_has_its_own_budget(
    client: TestClient, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    for n in range(REQUESTS):
        assert_ok(v1_request(client, headers, n))
    assert over_budget(v1_request(client, headers, 0)) == 60
    for n in range(REQUESTS):
        assert_ok(v1_request(client, other_headers, n))


def test_two_applications_of_one_organization_are_budgeted_apart(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    sibling = register(runtime, name="sibling-app")
    sibling_headers = {"Authorization": f"Bearer {mint(client, sibling)}", "AppKey": sibling.app_key}
    for n in range(REQUESTS):
        assert_ok(v1_request(client, headers, n))
    assert_ok(v1_request(client, sibling_headers, 0))


def test_unauthenticated_requests_do_not_spend_an_applications_budget(
    client: TestClient, app_creds: AppCreds, headers: dict[str, str]
) -> None:
    forged = {"Authorization": "Bearer not-a-token", "AppKey": app_creds.app_key}
    for n in range(REQUESTS + 2):
        assert_error(v1_request(client, forged, n), 401, "gateway.authentication.failure")
    for n in range(REQUESTS):
        assert_ok(v1_request(client, headers, n))


def test_authentication_is_decided_before_the_budget(
    client: TestClient, runtime: Runtime, app_creds: AppCreds, headers: dict[str, str]
) -> None:
    for n in range(REQUESTS):
        assert_ok(v1_request(client, headers, n))
    assert_error(v1_request(client, {"AppKey": app_creds.app_key}, 0), 401, "gateway.authentication.failure")
    assert_error(
        v1_request(client, {**headers, "AppKey": "someone-else"}, 0), 401, "gateway.authentication.failure"
    )
    over_budget(v1_request(client, headers, 0))


def test_the_budget_is_shared_between_processes_with_database_counters(
    site_with: Callable[..., Site], headers: dict[str, str]
) -> None:
    first, second = (site_with(rate_limit_storage="database").at("198.51.100.7") for _ in range(2))
    for n in range(REQUESTS):
        assert_ok(v1_request(first if n % 2 else second, headers, n))
    assert over_budget(v1_request(first, headers, 0)) == 60
    assert over_budget(v1_request(second, headers, 1)) == 60


def test_status_reads_are_shared_between_processes_with_database_counters(
    client: TestClient, site_with: Callable[..., Site], headers: dict[str, str]
) -> None:
    url = status_url(client, headers)
    first, second = (site_with(rate_limit_storage="database").at("198.51.100.7") for _ in range(2))
    for n in range(STATUS_READS):
        assert (first if n % 2 else second).get(url, headers=headers).status_code == 200
    assert over_budget(first.get(url, headers=headers)) == 60
    assert over_budget(second.get(url, headers=headers)) == 60


def test_by_default_the_budget_is_shared_on_postgresql(
    site_with: Callable[..., Site], headers: dict[str, str], settings: Settings
) -> None:
    first, second = site_with().at("198.51.100.7"), site_with().at("198.51.100.7")
    for n in range(REQUESTS):
        assert_ok(v1_request(first, headers, n))
    answer = v1_request(second, headers, 0)
    if settings.database_url.startswith("sqlite"):  # one process per SQLite database: counts stay in memory
        assert_ok(answer)
    else:
        assert over_budget(answer) == 60
