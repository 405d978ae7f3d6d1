"""Errors (spec section 4): codes, the error body, tracking ids, and no leaked internals."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.services import authentication, credentials, enqueue, job_status, submissions
from tests.conftest import AppCreds, assert_error, register
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

STATUS_URL = "/v1/jobs/insight/status/NjasfsdgTkkMDcvMjOTowMA=="


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


# --- routing errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/v1/nope"),
        ("POST", "/v1/transaction"),
        ("POST", "/v3/oauthtoken"),
        ("GET", "/v1/jobs/insight/status"),
        ("GET", "/v1/jobs/insight/status/a/b"),
    ],
)
def test_unknown_route_is_404(client: TestClient, method: str, path: str) -> None:
    body = assert_error(client.request(method, path), 404, "resource.not.found")
    assert body["errors"] == []


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v2/oauthtoken", "POST"),
        ("PUT", "/v1/transfers", "POST"),
        ("DELETE", "/v1/transactions", "POST"),
        ("POST", STATUS_URL, "GET"),
        ("DELETE", STATUS_URL, "GET"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_wrong_method_is_405(
    client: TestClient, headers: dict[str, str], method: str, path: str, allowed: str
) -> None:
    answer = client.request(method, path, headers=headers)
    # Every error on the token endpoint's path carries RFC 6749's members, the router's too.
    assert_error(answer, 405, "request.method.not.allowed", oauth=path == "/v2/oauthtoken")
    assert allowed in [m.strip() for m in answer.headers["allow"].split(",")]


# --- URL length ------------------------------------------------------------------------------------


def test_url_of_2048_characters_is_served(client: TestClient, headers: dict[str, str]) -> None:
    # The request target (path and query) is exactly 2048 characters.
    query = "state=pending&pad=" + "x" * (2048 - len("/v1/transactions?state=pending&pad="))
    url = f"/v1/transactions?{query}"
    assert len(url) == 2048
    assert client.post(url, json=record("URL-1"), headers=headers).status_code == 202


def test_path_of_2048_characters_without_query_is_not_414(client: TestClient) -> None:
    path = "/" + "a" * 2047
    assert_error(client.get(path), 404, "resource.not.found")


@pytest.mark.parametrize("shape", ["query", "path"])
def test_url_over_2048_characters_is_414(client: TestClient, headers: dict[str, str], shape: str) -> None:
    if shape == "query":
        url = "/v1/transactions?pad=" + "x" * (2049 - len("/v1/transactions?pad="))
    else:
        url = "/v1/jobs/insight/status/" + "A" * (2049 - len("/v1/jobs/insight/status/"))
    assert len(url) == 2049
    answer = client.request("POST" if shape == "query" else "GET", url, headers=headers)
    assert_error(answer, 414, "request.uri.too.long")


def test_414_is_decided_before_authentication(client: TestClient) -> None:
    assert_error(client.get("/v1/transactions?" + "x" * 3000), 414, "request.uri.too.long")


# --- unexpected failures ---------------------------------------------------------------------------


def _boom(*_: Any, **__: Any) -> Any:
    raise RuntimeError("secret-detail")


@pytest.mark.parametrize(
    ("target", "names", "method", "path"),
    [
        # Either reader of the status GET (blocking on SQLite, awaited on PostgreSQL) passes here.
        (job_status, ("check_path",), "GET", STATUS_URL),
        (submissions, ("batch_job",), "POST", "/v1/transactions"),
        (submissions, ("batch_job",), "POST", "/v1/transfers"),
        (enqueue, ("store_in",), "POST", "/v1/transactions"),
        (authentication, ("check_rules",), "GET", STATUS_URL),
    ],
)
def test_unhandled_exception_is_500_without_details(
    client: TestClient,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    target: object,
    names: tuple[str, ...],
    method: str,
    path: str,
) -> None:
    for name in names:
        monkeypatch.setattr(target, name, _boom)
    answer = client.request(method, path, json=record("BOOM-1"), headers=headers)
    body = assert_error(answer, 500, "internal.server.failure")
    assert body["errors"] == []
    for leak in ("secret-detail", "Traceback", "RuntimeError", ".py"):
        assert leak not in answer.text
        assert all(leak not in value for value in answer.headers.values())
    # The details go to the log instead, under the same tracking id's request.
    assert "secret-detail" in caplog.text


def test_unhandled_exception_on_the_token_endpoint_is_500(
    client: TestClient, app_creds: AppCreds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credentials, "mint_token", _boom)
    answer = client.post(
        "/v2/oauthtoken",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": app_creds.basic},
    )
    body = assert_error(answer, 500, "internal.server.failure", oauth=True)
    assert "secret-detail" not in answer.text
    assert "Traceback" not in answer.text
    assert isinstance(body["error"], str)


def test_unreachable_database_is_503_transient(
    serve_with: Any, headers: dict[str, str], app_creds: AppCreds, tmp_path: Any
) -> None:
    served = serve_with(database_url=f"sqlite:///{tmp_path}/no/such/directory/pendingtx.db")
    answers = [
        served.client.post("/v1/transactions", json=record("DB-1"), headers=headers),
        served.client.get(STATUS_URL, headers=headers),
        served.client.post(
            "/v2/oauthtoken",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": app_creds.basic},
        ),
    ]
    for answer, oauth in zip(answers, [False, False, True], strict=True):
        body = assert_error(answer, 503, "service.unavailable", oauth=oauth)
        assert body["transient"] is True
        assert answer.headers["retry-after"].isdecimal()


# --- tracking ids ----------------------------------------------------------------------------------


def _success_calls(client: TestClient, headers: dict[str, str], app_creds: AppCreds) -> list[Any]:
    accepted = client.post("/v1/transactions", json=record("TRK-1"), headers=headers)
    return [
        client.post(
            "/v2/oauthtoken",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": app_creds.basic},
        ),
        accepted,
        client.post(
            "/v1/transfers",
            json=record("TRK-2", type="Full Transfer", amount=None, toInvestorExternalId="I"),
            headers=headers,
        ),
        client.get(accepted.headers["location"], headers=headers),
        client.get("/healthz"),
        client.get("/openapi.json"),
        client.get("/docs"),
    ]


def test_every_success_carries_a_fresh_tracking_id(
    client: TestClient, headers: dict[str, str], app_creds: AppCreds
) -> None:
    answers = _success_calls(client, headers, app_creds)
    assert all(a.status_code < 300 for a in answers), [a.status_code for a in answers]
    ids = [a.headers["requesttrackingid"] for a in answers]
    assert all(is_uuid(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert all(len(a.headers.get_list("requesttrackingid")) == 1 for a in answers)


@pytest.mark.parametrize(
    "sent",
    [
        "6cfbfd80-60ef-04bb-8b67-95f164846a3d",
        "6CFBFD80-60EF-04BB-8B67-95F164846A3D",
        str(uuid.uuid4()),
    ],
)
def test_a_uuid_sent_by_the_client_is_reused(
    client: TestClient, headers: dict[str, str], app_creds: AppCreds, sent: str
) -> None:
    tracked = {**headers, "requesttrackingid": sent}
    success = client.post("/v1/transactions", json=record("TRK-3"), headers=tracked)
    assert success.status_code == 202
    assert success.headers["requesttrackingid"] == sent
    failure = client.get("/v1/jobs/insight/status/NjasfsdgTkkMDcvMjOTowMA==", headers=tracked)
    assert assert_error(failure, 404, "resource.not.found")["trackingId"] == sent
    unauthenticated = client.get("/nope", headers={"RequestTrackingId": sent})
    assert assert_error(unauthenticated, 404, "resource.not.found")["trackingId"] == sent


@pytest.mark.parametrize(
    "sent",
    ["not-a-uuid", "", "12345", "6cfbfd80-60ef-04bb-8b67-95f164846a3dXX", "<script>", "6cfbfd80 60ef"],
)
def test_a_tracking_id_that_is_not_a_uuid_is_replaced(client: TestClient, sent: str) -> None:
    success = client.get("/healthz", headers={"requesttrackingid": sent})
    failure = client.get("/nope", headers={"requesttrackingid": sent})
    for answer in (success, failure):
        assert answer.headers["requesttrackingid"] != sent
        assert is_uuid(answer.headers["requesttrackingid"])
    assert_error(failure, 404, "resource.not.found")  # the body's trackingId is the replacement too


# --- the error body, across every kind of error ----------------------------------------------------

Scenario = Callable[[TestClient, dict[str, str], Any], Any]


def _not_entitled(client: TestClient, _: dict[str, str], runtime: Any) -> Any:
    creds = register(runtime, name="plain-app", products=())
    token = client.post(
        "/v2/oauthtoken", data={"grant_type": "client_credentials"}, headers={"Authorization": creds.basic}
    ).json()["access_token"]
    return client.get(STATUS_URL, headers={"Authorization": f"Bearer {token}", "AppKey": creds.app_key})


SCENARIOS: dict[str, tuple[Scenario, int, str]] = {
    "bad state": (
        lambda c, h, _: c.post("/v1/transactions?state=x", json=record("E-1"), headers=h),
        400,
        "request.validation.failure",
    ),
    "bad body": (
        lambda c, h, _: c.post("/v1/transactions", json=[], headers=h),
        400,
        "request.validation.failure",
    ),
    "bad appName": (
        lambda c, h, _: c.get("/v1/jobs/x/status/abc", headers=h),
        400,
        "request.validation.failure",
    ),
    "no token": (lambda c, _h, _: c.get(STATUS_URL), 401, "gateway.authentication.failure"),
    "not entitled": (_not_entitled, 403, "gateway.authentication.failure"),
    "unknown job": (lambda c, h, _: c.get(STATUS_URL, headers=h), 404, "resource.not.found"),
    "unknown route": (lambda c, h, _: c.get("/v9/x", headers=h), 404, "resource.not.found"),
    "wrong method": (lambda c, h, _: c.get("/v1/transfers", headers=h), 405, "request.method.not.allowed"),
    "too large": (
        lambda c, h, _: c.post(
            "/v1/transactions",
            content=b" " * (16 * 1024 * 1024 + 1),
            headers={**h, "Content-Type": "application/json"},
        ),
        413,
        "request.too.large",
    ),
    "URL too long": (lambda c, h, _: c.get("/v1/" + "a" * 2100, headers=h), 414, "request.uri.too.long"),
    "media type": (
        lambda c, h, _: c.post(
            "/v1/transactions", content=b"{}", headers={**h, "Content-Type": "text/plain"}
        ),
        415,
        "request.unsupported.media.type",
    ),
}


@pytest.mark.parametrize("case", list(SCENARIOS))
def test_every_error_has_exactly_the_contract_body(
    client: TestClient, headers: dict[str, str], runtime: Any, case: str
) -> None:
    scenario, status, code = SCENARIOS[case]
    answer = scenario(client, headers, runtime)
    body = assert_error(answer, status, code)  # exactly code, message, trackingId, transient, errors
    assert set(body) == {"code", "message", "trackingId", "transient", "errors"}
    assert body["transient"] is False
    assert '"transient":false' in answer.text.replace(" ", "")
    assert is_uuid(body["trackingId"])


@pytest.mark.parametrize(
    ("data", "auth", "status"),
    [
        ({"grant_type": "client_credentials"}, False, 401),
        ({"grant_type": "password"}, True, 400),
        ({"grant_type": "invalidate_token"}, True, 400),
    ],
)
def test_token_endpoint_errors_add_the_oauth_members(
    client: TestClient, app_creds: AppCreds, data: dict[str, str], auth: bool, status: int
) -> None:
    answer = client.post(
        "/v2/oauthtoken", data=data, headers={"Authorization": app_creds.basic} if auth else {}
    )
    code = "gateway.authentication.failure" if status == 401 else "request.validation.failure"
    body = assert_error(answer, status, code, oauth=True)
    assert isinstance(body["error"], str)
    assert isinstance(body["error_description"], str)
    assert body["error_description"]
