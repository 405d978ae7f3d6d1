"""OAuth conventions (contract 7.5): `WWW-Authenticate` on every 401, RFC 7009 revocation at
`/v2/oauthtoken/revoke`, and RFC 8414 metadata at `/.well-known/oauth-authorization-server`."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime, build_app
from pendingtx.services import credentials
from tests.conftest import AppCreds, assert_error, mint
from tests.support import basic, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

REVOKE_URL = "/v2/oauthtoken/revoke"
METADATA_URL = "/.well-known/oauth-authorization-server"
STATUS_URL = "/v1/jobs/insight/status/NjasfsdgTkkMDcvMjOTowMA=="
BEARER = 'Bearer realm="pendingtx"'
INVALID_TOKEN = 'Bearer realm="pendingtx", error="invalid_token"'


def works(client: TestClient, token: str, app_key: str) -> bool:
    """Whether the token is accepted on /v1."""
    answer = client.get("/v1/transactions", headers={"Authorization": f"Bearer {token}", "AppKey": app_key})
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


# --- WWW-Authenticate ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), [("GET", "/v1/transactions"), ("GET", STATUS_URL)])
def test_a_401_without_a_token_challenges_for_a_bearer_token(
    client: TestClient, method: str, url: str
) -> None:
    for headers in ({}, {"AppKey": "x"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        answer = client.request(method, url, headers=headers)
        assert_error(answer, 401, "gateway.authentication.failure")
        assert answer.headers["www-authenticate"] == BEARER


@pytest.mark.parametrize(("method", "url"), [("GET", "/v1/transactions"), ("GET", STATUS_URL)])
def test_a_401_for_a_token_sent_says_invalid_token(
    client: TestClient, app_creds: AppCreds, token: str, method: str, url: str
) -> None:
    for headers in (
        {"Authorization": "Bearer not-a-token", "AppKey": app_creds.app_key},
        {"Authorization": f"Bearer {token}", "AppKey": "another-key"},
        {"Authorization": f"bearer {token}"},
    ):
        answer = client.request(method, url, headers=headers)
        body = assert_error(answer, 401, "gateway.authentication.failure")
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith(INVALID_TOKEN + ", error_description="), challenge
        assert f'error_description="{body["message"]}"' in challenge
        assert token not in challenge


def test_a_401_of_the_token_endpoints_challenges_for_client_credentials(
    client: TestClient, app_creds: AppCreds, token: str
) -> None:
    wrong = {"Authorization": basic(app_creds.app_key, "wrong")}
    for url, data in (
        ("/v2/oauthtoken", {"grant_type": "client_credentials"}),
        (REVOKE_URL, {"token": token}),
    ):
        for headers in (wrong, {}):
            answer = client.post(url, data=data, headers=headers)
            assert_error(answer, 401, "gateway.authentication.failure", oauth=True)
            assert answer.headers["www-authenticate"] == 'Basic realm="pendingtx"'


# --- RFC 7009 revocation ---------------------------------------------------------------------------


def test_revocation_ends_the_token_and_answers_200_with_no_body(
    client: TestClient, app_creds: AppCreds, token: str
) -> None:
    assert works(client, token, app_creds.app_key)
    answer = client.post(REVOKE_URL, data={"token": token}, headers={"Authorization": app_creds.basic})
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["requesttrackingid"]
    assert not works(client, token, app_creds.app_key)


def test_revocation_with_form_credentials_and_a_type_hint(
    client: TestClient, app_creds: AppCreds, token: str
) -> None:
    form = {
        "token": token,
        "token_type_hint": "refresh_token",  # a hint only: the token is found all the same
        "client_id": app_creds.app_key,
        "client_secret": app_creds.app_secret,
    }
    assert client.post(REVOKE_URL, data=form).status_code == 200
    assert not works(client, token, app_creds.app_key)


def test_an_unknown_or_foreign_token_is_200_and_left_alone(
    client: TestClient, app_creds: AppCreds, other_creds: AppCreds
) -> None:
    others = mint(client, other_creds)
    for token in ("no-such-token", others):
        answer = client.post(REVOKE_URL, data={"token": token}, headers={"Authorization": app_creds.basic})
        assert answer.status_code == 200
    assert works(client, others, other_creds.app_key)


def test_revocation_errors_are_oauth_errors(client: TestClient, app_creds: AppCreds, token: str) -> None:
    auth = {"Authorization": app_creds.basic}
    body = assert_error(
        client.post(REVOKE_URL, data={"token_type_hint": "access_token"}, headers=auth),
        400,
        "request.validation.failure",
        oauth=True,
    )
    assert body["error"] == "invalid_request"
    repeated = client.post(
        REVOKE_URL,
        content=f"token={token}&token={token}",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    body = assert_error(repeated, 400, "request.validation.failure", oauth=True)
    assert body["errors"] == [{"field": "token", "location": "body", "reason": "must be given once"}]
    answer = client.post(REVOKE_URL, json={"token": token}, headers=auth)
    assert_error(answer, 415, "request.unsupported.media.type", oauth=True)
    assert_error(client.get(REVOKE_URL), 405, "request.method.not.allowed", oauth=True)
    assert works(client, token, app_creds.app_key)


def test_revocation_failures_count_towards_the_token_endpoints_lockout(
    serve_with: Any, app_creds: AppCreds
) -> None:
    site = serve_with(auth_failure_limit=2)
    wrong = {"Authorization": basic(app_creds.app_key, "wrong")}
    for _ in range(2):
        assert_error(
            site.client.post(REVOKE_URL, data={"token": "t"}, headers=wrong),
            401,
            "gateway.authentication.failure",
            oauth=True,
        )
    right = {"Authorization": app_creds.basic}
    for url, data in ((REVOKE_URL, {"token": "t"}), ("/v2/oauthtoken", {"grant_type": "client_credentials"})):
        assert_error(site.client.post(url, data=data, headers=right), 429, "request.rate.limited", oauth=True)


def test_revocation_takes_a_secret_check_slot(serve_with: Any, app_creds: AppCreds) -> None:
    site = serve_with(max_concurrent_secret_checks=1, secret_check_wait_seconds=0.05)
    slots = site.runtime.abuse.secret_checks
    with slots.slot(slots.deadline()):
        answer = site.client.post(REVOKE_URL, data={"token": "t"}, headers={"Authorization": app_creds.basic})
    assert_error(answer, 503, "service.unavailable", oauth=True)


# --- RFC 8414 metadata, and a standard client using it ---------------------------------------------


def test_metadata_names_the_endpoints_under_the_requested_root(client: TestClient) -> None:
    answer = client.get(METADATA_URL)
    assert answer.status_code == 200
    assert answer.json() == {
        "issuer": "http://127.0.0.1",
        "token_endpoint": "http://127.0.0.1/v2/oauthtoken",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "revocation_endpoint": "http://127.0.0.1/v2/oauthtoken/revoke",
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_discovers_fetches_and_revokes(
    runtime: Runtime, app_creds: AppCreds, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # http on 127.0.0.1, for the test only
    app = build_app(runtime)

    async def scenario() -> tuple[int, int, int]:
        async with AsyncOAuth2Client(
            app_creds.app_key,
            app_creds.app_secret,
            token_endpoint_auth_method=method,
            transport=httpx2.ASGITransport(app=app),
        ) as oauth:
            found = AuthorizationServerMetadata(
                (await oauth.request("GET", f"http://127.0.0.1{METADATA_URL}", withhold_token=True)).json()
            )
            # Every rule of RFC 8414 but response_types_supported, which authlib wants non-empty even
            # where, as here, no grant uses the authorization endpoint.
            for key in found.REGISTRY_KEYS:
                if key != "response_types_supported":
                    getattr(found, f"validate_{key}")()
            assert method in found["token_endpoint_auth_methods_supported"]
            await oauth.fetch_token(found["token_endpoint"], grant_type="client_credentials")
            headers = {"AppKey": app_creds.app_key}
            submitted = await oauth.post(
                "http://127.0.0.1/v1/transactions", json=record("AL-1"), headers=headers
            )
            revoked = await oauth.revoke_token(found["revocation_endpoint"], oauth.token["access_token"])
            refused = await oauth.get("http://127.0.0.1/v1/transactions", headers=headers)
            return submitted.status_code, revoked.status_code, refused.status_code

    assert anyio.run(scenario) == (202, 200, 401)
    assert credentials.list_apps(runtime.uow)
