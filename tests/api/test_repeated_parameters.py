"""Repeated parameters where one is expected are a 400 on every route alike (contract 7.5): form fields
of the token endpoint, the Authorization, AppKey and Idempotency-Key headers, and query parameters.

Whichever copy an HTTP stack would pick (the first here, the last there), none is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from tests.conftest import AppCreds, assert_error
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
VALIDATION = "request.validation.failure"

Headers = list[tuple[str, str]]


def repeated(body: dict[str, Any], field: str, location: str) -> None:
    assert body["errors"] == [{"field": field, "location": location, "reason": "must be given once"}]


# --- form fields of the token endpoint ---------------------------------------------------------------


def test_a_repeated_client_secret_is_400_even_when_one_copy_is_right(
    client: TestClient, app_creds: AppCreds
) -> None:
    for secrets in (["bad", app_creds.app_secret], [app_creds.app_secret, "bad"]):
        form = [("grant_type", "client_credentials"), ("client_id", app_creds.app_key)]
        form += [("client_secret", secret) for secret in secrets]
        answer = client.post("/v2/oauthtoken", content=urlencode(form), headers=FORM)
        repeated(assert_error(answer, 400, VALIDATION, oauth=True), "client_secret", "body")
        assert answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("field", ["grant_type", "client_id", "token"])
def test_any_repeated_form_field_is_400(client: TestClient, app_creds: AppCreds, field: str) -> None:
    form = {"grant_type": "client_credentials", "client_id": app_creds.app_key, "token": "t"}
    body = urlencode(form) + "&" + urlencode({field: form[field]})
    answer = client.post("/v2/oauthtoken", content=body, headers={**FORM, "Authorization": app_creds.basic})
    repeated(assert_error(answer, 400, VALIDATION, oauth=True), field, "body")


def test_repeated_unknown_form_fields_are_ignored(client: TestClient, app_creds: AppCreds) -> None:
    # RFC 6749, 3.2: the server ignores parameters it does not know, repeated or not.
    body = "grant_type=client_credentials&scope=a&scope=b&x=1&x=2"
    answer = client.post("/v2/oauthtoken", content=body, headers={**FORM, "Authorization": app_creds.basic})
    assert answer.status_code == 200, answer.text


# --- headers, on every route ------------------------------------------------------------------------


@pytest.fixture
def routes(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> dict[str, Callable[[Headers], Any]]:
    """Each route, called with a request that succeeds with the given headers (none repeated)."""
    accepted = client.post("/v1/transactions", json=[record("REP-1")], headers=headers)
    assert accepted.status_code == 202, accepted.text
    runtime.new_worker().run_until_idle()  # REP-1 exists, to be patched
    status_url = accepted.headers["location"]
    return {
        "GET status": lambda h: client.get(status_url, headers=h),
        "GET /v1/transactions": lambda h: client.get("/v1/transactions", headers=h),
        "POST /v1/transactions": lambda h: client.post("/v1/transactions", json=[record("REP-2")], headers=h),
        "POST /v1/transfers": lambda h: client.post(
            "/v1/transfers",
            json=record("REP-3", type="Full Transfer", amount=None, toInvestorExternalId="INV-2"),
            headers=h,
        ),
        "PATCH /v1/transactions/{externalId}": lambda h: client.patch(
            "/v1/transactions/REP-1",
            content=b'{"comments": "x"}',
            headers=[*h, ("Content-Type", "application/merge-patch+json")],
        ),
        "POST /v2/oauthtoken": lambda h: client.post(
            "/v2/oauthtoken", content="grant_type=client_credentials", headers=[*h, *FORM.items()]
        ),
        "GET /healthz": lambda h: client.get("/healthz", headers=h),
    }


ROUTES = [
    "GET status",
    "GET /v1/transactions",
    "POST /v1/transactions",
    "POST /v1/transfers",
    "PATCH /v1/transactions/{externalId}",
    "POST /v2/oauthtoken",
    "GET /healthz",
]


def caller_headers(route: str, headers: dict[str, str], app_creds: AppCreds) -> Headers:
    if route == "POST /v2/oauthtoken":
        return [("Authorization", app_creds.basic), ("AppKey", app_creds.app_key)]
    return list(headers.items())


@pytest.mark.parametrize("route", ROUTES)
def test_each_route_succeeds_with_the_headers_given_once(
    routes: dict[str, Callable[[Headers], Any]], headers: dict[str, str], app_creds: AppCreds, route: str
) -> None:
    answer = routes[route](caller_headers(route, headers, app_creds))
    assert answer.status_code in (200, 202), answer.text


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", ["Authorization", "AppKey"])
@pytest.mark.parametrize("right_first", [True, False], ids=["right-first", "right-last"])
def test_a_repeated_authorization_or_appkey_header_is_400_on_every_route(
    routes: dict[str, Callable[[Headers], Any]],
    headers: dict[str, str],
    app_creds: AppCreds,
    route: str,
    name: str,
    right_first: bool,
) -> None:
    sent = caller_headers(route, headers, app_creds)
    right = next(value for key, value in sent if key == name)
    copies = [(name, right), (name.lower(), "wrong")]
    sent = [(key, value) for key, value in sent if key != name] + (copies if right_first else copies[::-1])
    repeated(
        assert_error(routes[route](sent), 400, VALIDATION, oauth=route.endswith("oauthtoken")), name, "header"
    )


def test_a_repeated_idempotency_key_is_400(client: TestClient, headers: dict[str, str]) -> None:
    sent = [*headers.items(), ("Idempotency-Key", "k-1"), ("Idempotency-Key", "k-2")]
    answer = client.post("/v1/transactions", json=[record("REP-4")], headers=sent)
    repeated(assert_error(answer, 400, VALIDATION), "Idempotency-Key", "header")


def test_every_repeated_header_is_named(client: TestClient, headers: dict[str, str]) -> None:
    sent = [*headers.items(), *headers.items()]
    body = assert_error(client.get("/v1/transactions", headers=sent), 400, VALIDATION)
    assert [(e["field"], e["location"]) for e in body["errors"]] == [
        ("Authorization", "header"),
        ("AppKey", "header"),
    ]


# --- query parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "field"),
    [
        ("POST", "/v1/transactions", "state=pending&state=pending", "state"),
        ("POST", "/v1/transfers", "state=pending&state=bogus", "state"),
        ("GET", "/v1/transactions", "limit=5&limit=6", "limit"),
    ],
)
def test_a_repeated_query_parameter_is_400(
    client: TestClient, headers: dict[str, str], method: str, path: str, query: str, field: str
) -> None:
    body = record("REP-5", type="Full Transfer", amount=None, toInvestorExternalId="INV-2")
    answer = client.request(
        method, f"{path}?{query}", json=body if method == "POST" else None, headers=headers
    )
    repeated(assert_error(answer, 400, VALIDATION), field, "query")
