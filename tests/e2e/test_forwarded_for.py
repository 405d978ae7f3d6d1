"""`X-Forwarded-For` against a real server process: only PENDINGTX_TRUSTED_PROXIES may set the client.

uvicorn, left to itself, believes the header from loopback; `pendingtx serve` must not, so a caller on
127.0.0.1 can neither pass an allow-list nor dodge the failed-authentication lockout with it.
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.e2e.conftest import StartServer
from tests.e2e.server import caller_headers, create_app_via_cli, run_cli

pytestmark = pytest.mark.e2e

LIMIT = 3


def test_forwarded_for_from_loopback_does_not_pass_an_allow_list(
    start_server: StartServer, e2e_database_url: str
) -> None:
    server = start_server(no_worker=True)
    app = create_app_via_cli(e2e_database_url)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        headers = caller_headers(http, app)  # the token endpoint is not allow-listed
        run_cli(
            ["apps", "update", app["appKey"], "--allow-ip", "10.9.9.9/32", "--database-url", e2e_database_url]
        )
        forged = {**headers, "X-Forwarded-For": "10.9.9.9"}
        for answer in (
            http.get("/v1/transactions", headers=forged),
            http.get("/v1/jobs/insight/status/unknown-key", headers=forged),
        ):
            assert answer.status_code == 403, answer.text
            assert answer.json()["code"] == "gateway.access.failure"
            assert "127.0.0.1" in answer.json()["message"]


def test_forwarded_for_from_loopback_does_not_escape_the_address_lockout(
    start_server: StartServer, e2e_database_url: str
) -> None:
    server = start_server({"PENDINGTX_AUTH_FAILURE_LIMIT": str(LIMIT)}, no_worker=True)
    app = create_app_via_cli(e2e_database_url)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        # A guesser tries a new AppKey each time, claiming a new address each time.
        for n in range(LIMIT):
            answer = http.post(
                "/v2/oauthtoken",
                data={"grant_type": "client_credentials"},
                auth=(f"guess-{secrets.token_hex(8)}", "wrong"),
                headers={"X-Forwarded-For": f"10.9.9.{n + 1}"},
            )
            assert answer.status_code == 401, answer.text
        # The address (loopback) is locked out, whatever the header now says.
        answer = http.post(
            "/v2/oauthtoken",
            data={"grant_type": "client_credentials"},
            auth=(app["appKey"], app["appSecret"]),
            headers={"X-Forwarded-For": "10.9.9.200"},
        )
        assert answer.status_code == 429, answer.text
        assert answer.json()["code"] == "request.rate.limited"
        assert int(answer.headers["retry-after"]) >= 1


def test_a_trusted_proxy_still_names_the_client(start_server: StartServer, e2e_database_url: str) -> None:
    server = start_server({"PENDINGTX_TRUSTED_PROXIES": "127.0.0.1/32"}, no_worker=True)
    app = create_app_via_cli(e2e_database_url)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        headers = caller_headers(http, app)
        run_cli(
            ["apps", "update", app["appKey"], "--allow-ip", "10.9.9.9/32", "--database-url", e2e_database_url]
        )
        assert (
            http.get("/v1/transactions", headers={**headers, "X-Forwarded-For": "10.9.9.9"}).status_code
            == 200
        )
        refused = http.get("/v1/transactions", headers={**headers, "X-Forwarded-For": "10.9.9.8"})
        assert refused.status_code == 403, refused.text
