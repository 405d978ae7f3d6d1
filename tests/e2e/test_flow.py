"""The whole flow against a real server process: CLI-registered app, token, batch, status."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.server import Server, create_app_via_cli, wait_until
from tests.support import record

pytestmark = pytest.mark.e2e

TERMINAL = {"Completed", "Partially Completed", "Failed"}


def mint_token(http: httpx.Client, app: dict[str, Any]) -> str:
    answer = http.post(
        "/v2/oauthtoken", data={"grant_type": "client_credentials"}, auth=(app["appKey"], app["appSecret"])
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    return str(body["access_token"])


def poll_until_terminal(
    http: httpx.Client, key: str, headers: dict[str, str], timeout: float
) -> dict[str, Any]:
    """GET the job status until it is terminal; fails the test when `timeout` seconds pass first."""
    seen: dict[str, Any] = {}

    def terminal() -> bool:
        answer = http.get(f"/v1/jobs/insight/status/{key}", headers=headers)
        assert answer.status_code == 200, answer.text
        seen.update(answer.json())
        if seen["status"] in TERMINAL:
            assert "retry-after" not in answer.headers
            return True
        assert answer.headers["retry-after"].isdigit()
        return False

    wait_until(terminal, timeout, what=f"job {key} to finish")
    return seen


def seed_status_request(base_url: str, key: str, app_key: str, token: str) -> tuple[int, dict[str, str], Any]:
    """The status request exactly as the seed documents it: lower-case `appkey` and `authorization`."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        conn.putrequest("GET", f"/v1/jobs/insight/status/{key}")
        conn.putheader("appkey", app_key)
        conn.putheader("authorization", f"Bearer {token}")
        conn.endheaders()
        answer = conn.getresponse()
        headers = {k.lower(): v for k, v in answer.getheaders()}
        return answer.status, headers, json.loads(answer.read())
    finally:
        conn.close()


def test_create_token_batch_and_status(server: Server, e2e_database_url: str) -> None:
    app = create_app_via_cli(e2e_database_url)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        token = mint_token(http, app)
        headers = {"Authorization": f"Bearer {token}", "AppKey": app["appKey"]}
        batch = [
            record("E2E-1"),
            record("E2E-2", amount=-5),
            record("E2E-3", type="Partial Redemption", amount=None, units="12.5"),
            record("E2E-4", type="Not A Type"),
        ]
        accepted = http.post("/v1/transactions", json=batch, headers=headers)
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert list(body) == ["jobStatusQueryKey", "batchId"]
        key = body["jobStatusQueryKey"]
        assert len(key) == 24
        assert body["batchId"].isdigit()
        assert accepted.headers["location"] == f"/v1/jobs/insight/status/{key}"

        done = poll_until_terminal(http, key, headers, timeout=15)

    assert list(done)[:4] == ["status", "batchId", "message", "validationMessage"]
    assert done["status"] == "Partially Completed"
    assert done["batchId"] == body["batchId"]
    assert done["message"] == "Partially Completed: 2 of 4 transactions created; 2 rejected"
    assert (done["recordCount"], done["processedCount"], done["failedCount"]) == (4, 4, 2)
    assert [m.split(":")[0] for m in done["validationMessage"]] == [
        "[1] externalId=E2E-2",
        "[3] externalId=E2E-4",
    ]
    assert [(d["index"], d["field"]) for d in done["validationDetails"]] == [(1, "amount"), (3, "type")]

    status, seed_headers, seed_body = seed_status_request(server.base_url, key, app["appKey"], token)
    assert status == 200, seed_body
    assert seed_body == done
    assert seed_headers["requesttrackingid"]
    assert "retry-after" not in seed_headers


def test_transfers_accept_only_transfers(server: Server, e2e_database_url: str) -> None:
    app = create_app_via_cli(e2e_database_url, name="transfer-app")
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        token = mint_token(http, app)
        headers = {"Authorization": f"Bearer {token}", "AppKey": app["appKey"]}
        batch = [
            record("TR-1", type="Full Transfer", amount=None, toInvestorExternalId="INV-9"),
            record("TR-2", type="Partial Transfer", amount="10.00", toProductExternalId="FUND-B"),
            record("TR-3"),  # a subscription is not a transfer
        ]
        accepted = http.post("/v1/transfers?state=pending", json=batch, headers=headers)
        assert accepted.status_code == 202, accepted.text
        key = accepted.json()["jobStatusQueryKey"]
        done = poll_until_terminal(http, key, headers, timeout=15)

    assert done["status"] == "Partially Completed"
    assert (done["recordCount"], done["processedCount"], done["failedCount"]) == (3, 3, 1)
    assert done["validationDetails"] == [
        {
            "index": 2,
            "externalId": "TR-3",
            "field": "type",
            "reason": "must be Full Transfer or Partial Transfer on /v1/transfers",
        }
    ]


def test_unauthenticated_and_foreign_requests_are_refused(server: Server, e2e_database_url: str) -> None:
    app = create_app_via_cli(e2e_database_url, name="auth-app")
    other = create_app_via_cli(e2e_database_url, name="other-app", org="other-org")
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        bad = http.post(
            "/v2/oauthtoken", data={"grant_type": "client_credentials"}, auth=(app["appKey"], "wrong")
        )
        assert bad.status_code == 401
        assert bad.json()["code"] == "gateway.authentication.failure"

        token = mint_token(http, app)
        missing_key = http.post(
            "/v1/transactions", json=[record("X-1")], headers={"Authorization": f"Bearer {token}"}
        )
        assert missing_key.status_code == 401
        assert missing_key.headers["requesttrackingid"] == missing_key.json()["trackingId"]

        headers = {"Authorization": f"Bearer {token}", "AppKey": app["appKey"]}
        key = http.post("/v1/transactions", json=[record("X-1")], headers=headers).json()["jobStatusQueryKey"]
        other_token = mint_token(http, other)
        foreign = http.get(
            f"/v1/jobs/insight/status/{key}",
            headers={"Authorization": f"Bearer {other_token}", "AppKey": other["appKey"]},
        )
        assert foreign.status_code == 404
        assert foreign.json()["code"] == "resource.not.found"
        assert poll_until_terminal(http, key, headers, timeout=15)["status"] == "Completed"
