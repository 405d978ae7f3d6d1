"""The token endpoint, `POST /v2/oauthtoken` (spec 2.1)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx2
import pytest
import sqlalchemy as sa
from authlib.integrations.httpx_client import AsyncOAuth2Client
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime, build_app
from pendingtx.services import credentials
from pendingtx.storage.tables import metadata
from tests.conftest import AppCreds, assert_error, mint, register
from tests.support import FakeClock, basic, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

TOKEN_URL = "/v2/oauthtoken"
MINT = {"grant_type": "client_credentials"}
TOKEN_MEMBERS = ["access_token", "token_type", "expires_in", "issued_at", "application_name", "status"]


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def submit_with(client: TestClient, token: str, app_key: str) -> int:
    """The status of a /v1 call made with this token: 202 when the token is accepted."""
    answer = client.post(
        "/v1/transactions",
        json=record("TOKEN-USE-1"),
        headers={"Authorization": f"Bearer {token}", "AppKey": app_key},
    )
    return answer.status_code


def token_count(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM tokens").scalar_one())


def assert_minted(answer: Any, clock: FakeClock, *, expires_in: int = 3600) -> str:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == TOKEN_MEMBERS
    assert body["token_type"] == "Bearer"
    assert type(body["expires_in"]) is int
    assert body["expires_in"] == expires_in
    assert body["issued_at"] == str(epoch_ms(clock()))
    assert body["application_name"] == "ops-app"
    assert body["status"] == "approved"
    assert answer.headers["cache-control"] == "no-store"
    token = body["access_token"]
    assert isinstance(token, str)
    # At least 256 bits: 32 bytes of URL-safe base64 are 43 characters.
    assert len(token) >= 43
    return token


# --- minting ----------------------------------------------------------------------------------------


def test_basic_header_mints_a_token(client: TestClient, app_creds: AppCreds, clock: FakeClock) -> None:
    clock.advance(0.123)  # issued_at keeps the milliseconds
    answer = client.post(TOKEN_URL, data=MINT, headers={"Authorization": app_creds.basic})
    token = assert_minted(answer, clock)
    assert submit_with(client, token, app_creds.app_key) == 202


@pytest.mark.parametrize("scheme", ["basic", "BASIC"])
def test_basic_scheme_is_case_insensitive(
    client: TestClient, app_creds: AppCreds, clock: FakeClock, scheme: str
) -> None:
    encoded = app_creds.basic.removeprefix("Basic ")
    answer = client.post(TOKEN_URL, data=MINT, headers={"Authorization": f"{scheme} {encoded}"})
    assert submit_with(client, assert_minted(answer, clock), app_creds.app_key) == 202


def test_bare_base64_without_basic_prefix_mints_a_token(
    client: TestClient, app_creds: AppCreds, clock: FakeClock
) -> None:
    bare = base64.b64encode(f"{app_creds.app_key}:{app_creds.app_secret}".encode()).decode()
    answer = client.post(TOKEN_URL, data=MINT, headers={"Authorization": bare})
    assert submit_with(client, assert_minted(answer, clock), app_creds.app_key) == 202


def test_form_fields_mint_a_token(client: TestClient, app_creds: AppCreds, clock: FakeClock) -> None:
    form = {**MINT, "client_id": app_creds.app_key, "client_secret": app_creds.app_secret}
    answer = client.post(TOKEN_URL, data=form)
    assert submit_with(client, assert_minted(answer, clock), app_creds.app_key) == 202


def test_form_content_type_with_charset_is_accepted(
    client: TestClient, app_creds: AppCreds, clock: FakeClock
) -> None:
    answer = client.post(
        TOKEN_URL,
        content=b"grant_type=client_credentials",
        headers={
            "Authorization": app_creds.basic,
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        },
    )
    assert_minted(answer, clock)


def test_each_mint_is_a_new_token_and_all_stay_valid(client: TestClient, app_creds: AppCreds) -> None:
    first, second = mint(client, app_creds), mint(client, app_creds)
    assert first != second
    assert submit_with(client, first, app_creds.app_key) == 202
    assert submit_with(client, second, app_creds.app_key) == 202


def test_expires_in_follows_the_ttl_setting(serve_with: Any, app_creds: AppCreds, clock: FakeClock) -> None:
    served = serve_with(token_ttl_seconds=600)
    answer = served.client.post(TOKEN_URL, data=MINT, headers={"Authorization": app_creds.basic})
    assert_minted(answer, clock, expires_in=600)


def test_token_is_bound_to_its_application(client: TestClient, runtime: Runtime, app_creds: AppCreds) -> None:
    second = register(runtime, name="second-app")
    token = mint(client, second)
    assert submit_with(client, token, second.app_key) == 202
    assert submit_with(client, token, app_creds.app_key) == 401


# --- bad client credentials ------------------------------------------------------------------------


def _bad_credentials(case: str, creds: AppCreds, runtime: Runtime) -> dict[str, Any]:
    """Keyword arguments of client.post for each way of presenting bad client credentials."""
    if case == "wrong secret":
        return {"data": MINT, "headers": {"Authorization": basic(creds.app_key, "not-the-secret")}}
    if case == "unknown key":
        return {"data": MINT, "headers": {"Authorization": basic("0" * 32, creds.app_secret)}}
    if case == "disabled app":
        assert credentials.set_disabled(runtime.uow, creds.app_key)
        return {"data": MINT, "headers": {"Authorization": creds.basic}}
    if case == "no credentials":
        return {"data": MINT}
    if case == "wrong secret in form":
        return {"data": {**MINT, "client_id": creds.app_key, "client_secret": "not-the-secret"}}
    if case == "client_id without secret":
        return {"data": {**MINT, "client_id": creds.app_key}}
    if case == "not base64":
        return {"data": MINT, "headers": {"Authorization": "Basic !!!not-base64!!!"}}
    if case == "no colon":
        encoded = base64.b64encode(creds.app_key.encode()).decode()
        return {"data": MINT, "headers": {"Authorization": f"Basic {encoded}"}}
    if case == "bearer instead of basic":
        return {"data": MINT, "headers": {"Authorization": "Bearer abc"}}
    raise AssertionError(case)


BAD_CREDENTIALS = [
    "wrong secret",
    "unknown key",
    "disabled app",
    "no credentials",
    "wrong secret in form",
    "client_id without secret",
    "not base64",
    "no colon",
    "bearer instead of basic",
]


@pytest.mark.parametrize("case", BAD_CREDENTIALS)
def test_bad_client_credentials_are_401_invalid_client(
    client: TestClient, runtime: Runtime, app_creds: AppCreds, case: str
) -> None:
    answer = client.post(TOKEN_URL, **_bad_credentials(case, app_creds, runtime))
    body = assert_error(answer, 401, "gateway.authentication.failure", oauth=True)
    assert body["error"] == "invalid_client"
    assert isinstance(body["error_description"], str)
    assert body["error_description"]
    assert token_count(runtime) == 0


@pytest.mark.parametrize("case", ["wrong secret", "unknown key", "disabled app"])
def test_bad_credentials_cannot_revoke(
    client: TestClient, runtime: Runtime, app_creds: AppCreds, token: str, case: str
) -> None:
    kwargs = _bad_credentials(case, app_creds, runtime)
    kwargs["data"] = {"grant_type": "invalidate_token", "token": token}
    body = assert_error(client.post(TOKEN_URL, **kwargs), 401, "gateway.authentication.failure", oauth=True)
    assert body["error"] == "invalid_client"
    if case != "disabled app":
        assert submit_with(client, token, app_creds.app_key) == 202


# --- grant types and media types -------------------------------------------------------------------


@pytest.mark.parametrize(
    "grant", ["password", "authorization_code", "refresh_token", "CLIENT_CREDENTIALS", ""]
)
def test_unsupported_grant_type_is_400(
    client: TestClient, runtime: Runtime, app_creds: AppCreds, grant: str
) -> None:
    answer = client.post(TOKEN_URL, data={"grant_type": grant}, headers={"Authorization": app_creds.basic})
    body = assert_error(answer, 400, "request.validation.failure", oauth=True)
    assert body["error"] == "unsupported_grant_type"
    assert body["error_description"]
    assert [e["field"] for e in body["errors"]] == ["grant_type"]
    assert token_count(runtime) == 0


def test_missing_grant_type_is_400(client: TestClient, runtime: Runtime, app_creds: AppCreds) -> None:
    answer = client.post(TOKEN_URL, data={"scope": "x"}, headers={"Authorization": app_creds.basic})
    body = assert_error(answer, 400, "request.validation.failure", oauth=True)
    assert body["error"] == "unsupported_grant_type"
    assert body["errors"][0]["field"] == "grant_type"
    assert token_count(runtime) == 0


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/json", b'{"grant_type": "client_credentials"}'),
        ("text/plain", b"grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", b"--x--"),
        (None, b"grant_type=client_credentials"),
    ],
)
def test_non_form_content_type_is_415(
    client: TestClient, runtime: Runtime, app_creds: AppCreds, content_type: str | None, content: bytes
) -> None:
    headers = {"Authorization": app_creds.basic}
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = client.post(TOKEN_URL, content=content, headers=headers)
    body = assert_error(answer, 415, "request.unsupported.media.type", oauth=True)
    assert body["error"]
    assert token_count(runtime) == 0


# --- revocation ------------------------------------------------------------------------------------


def test_revocation_ends_the_token(client: TestClient, app_creds: AppCreds, token: str) -> None:
    other_token = mint(client, app_creds)
    assert submit_with(client, token, app_creds.app_key) == 202
    answer = client.post(
        TOKEN_URL,
        data={"grant_type": "invalidate_token", "token": token},
        headers={"Authorization": app_creds.basic},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert submit_with(client, token, app_creds.app_key) == 401
    # Only that token: the application's other tokens live on.
    assert submit_with(client, other_token, app_creds.app_key) == 202


def test_revocation_with_form_credentials(client: TestClient, app_creds: AppCreds, token: str) -> None:
    form = {
        "grant_type": "invalidate_token",
        "token": token,
        "client_id": app_creds.app_key,
        "client_secret": app_creds.app_secret,
    }
    assert client.post(TOKEN_URL, data=form).status_code == 200
    assert submit_with(client, token, app_creds.app_key) == 401


def test_revoking_another_applications_token_does_not_revoke_it(
    client: TestClient, app_creds: AppCreds, other_creds: AppCreds, token: str
) -> None:
    answer = client.post(
        TOKEN_URL,
        data={"grant_type": "invalidate_token", "token": token},
        headers={"Authorization": other_creds.basic},
    )
    assert answer.status_code == 200, answer.text
    assert submit_with(client, token, app_creds.app_key) == 202


def test_revoking_an_unknown_token_is_200(client: TestClient, app_creds: AppCreds) -> None:
    answer = client.post(
        TOKEN_URL,
        data={"grant_type": "invalidate_token", "token": "no-such-token"},
        headers={"Authorization": app_creds.basic},
    )
    assert answer.status_code == 200, answer.text


def test_revocation_without_token_is_400(client: TestClient, app_creds: AppCreds, token: str) -> None:
    answer = client.post(
        TOKEN_URL, data={"grant_type": "invalidate_token"}, headers={"Authorization": app_creds.basic}
    )
    body = assert_error(answer, 400, "request.validation.failure", oauth=True)
    assert [e["field"] for e in body["errors"]] == ["token"]
    assert submit_with(client, token, app_creds.app_key) == 202


# --- storage ---------------------------------------------------------------------------------------


def _every_stored_value(runtime: Runtime) -> list[str]:
    values: list[str] = []
    with runtime.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                values.extend(
                    v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row if v is not None
                )
    return values


def test_token_is_stored_only_as_a_digest(client: TestClient, runtime: Runtime, token: str) -> None:
    with runtime.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM tokens")).all()
    assert len(rows) == 1
    assert not any(token in str(value) for value in rows[0])
    assert not any(token in value for value in _every_stored_value(runtime))


def test_app_secret_is_stored_only_as_an_argon2_hash(runtime: Runtime, app_creds: AppCreds) -> None:
    with runtime.engine.connect() as conn:
        hashes = conn.execute(sa.text("SELECT secret_hash FROM apps")).scalars().all()
    assert len(hashes) == 1
    assert hashes[0].startswith("$argon2")
    assert not any(app_creds.app_secret in value for value in _every_stored_value(runtime))


# --- a standard OAuth2 client, unadapted -------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials_flow(runtime: Runtime, app_creds: AppCreds, method: str) -> None:
    app = build_app(runtime)
    base = "http://127.0.0.1"

    async def scenario() -> tuple[dict[str, Any], int, int, dict[str, Any]]:
        async with AsyncOAuth2Client(
            app_creds.app_key,
            app_creds.app_secret,
            token_endpoint_auth_method=method,
            transport=httpx2.ASGITransport(app=app),
        ) as oauth:
            fetched = await oauth.fetch_token(f"{base}{TOKEN_URL}", grant_type="client_credentials")
            accepted = await oauth.post(
                f"{base}/v1/transactions", json=record("AUTHLIB-1"), headers={"AppKey": app_creds.app_key}
            )
            status = await oauth.get(
                f"{base}{accepted.headers['location']}", headers={"AppKey": app_creds.app_key}
            )
            return dict(fetched), accepted.status_code, status.status_code, status.json()

    fetched, accepted, status, job = anyio.run(scenario)
    assert fetched["token_type"] == "Bearer"
    assert fetched["expires_in"] == 3600
    assert accepted == 202
    assert status == 200
    assert job["status"] == "Submitted"
