"""GET /v1/transactions/{externalId}: one transaction as the listing shows it, or 404; on both databases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from tests.conftest import assert_error
from tests.support import record

EXACT = msgspec.json.Decoder(float_hook=Decimal)


def submit(client: TestClient, headers: dict[str, str], runtime: Runtime, *records: dict[str, Any]) -> None:
    answer = client.post("/v1/transactions", json=list(records), headers=headers)
    assert answer.status_code == 202, answer.text
    runtime.new_worker().run_until_idle()


def get(client: TestClient, headers: dict[str, str], external_id: str) -> Any:
    return client.get(f"/v1/transactions/{quote(external_id, safe='')}", headers=headers)


def listed(client: TestClient, headers: dict[str, str], external_id: str) -> Any:
    answer = client.get("/v1/transactions", params={"externalId": external_id}, headers=headers)
    [only] = EXACT.decode(answer.content)["data"]["results"]
    return only


@pytest.fixture
def stored(client: TestClient, headers: dict[str, str], runtime: Runtime) -> None:
    submit(
        client,
        headers,
        runtime,
        record("PT-1", amount="100.50", comments="hello"),
        record("PT.2:x_y", type="Partial Redemption", amount=None, units="0.000123"),
    )


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("external_id", ["PT-1", "PT.2:x_y"])
def test_the_answer_is_the_transaction_as_listed(
    client: TestClient, headers: dict[str, str], external_id: str
) -> None:
    answer = get(client, headers, external_id)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["requesttrackingid"]
    assert EXACT.decode(answer.content) == listed(client, headers, external_id)


@pytest.mark.usefixtures("stored")
def test_amounts_keep_their_digits(client: TestClient, headers: dict[str, str]) -> None:
    answer = get(client, headers, "PT-1")
    assert b'"amount":100.5' in answer.content  # a JSON number with the stored digits, as in the listing
    body = EXACT.decode(answer.content)
    assert (body["externalId"], body["status"], body["comments"]) == ("PT-1", "Active", "hello")
    assert EXACT.decode(get(client, headers, "PT.2:x_y").content)["units"] == Decimal("0.000123")


@pytest.mark.usefixtures("stored")
def test_a_cancelled_transaction_is_still_found(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    answer = client.patch(
        "/v1/transactions/PT-1",
        content=b'{"status": "Cancel"}',
        headers={**headers, "Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 202, answer.text
    runtime.new_worker().run_until_idle()
    assert get(client, headers, "PT-1").json()["status"] == "Cancel"


@pytest.mark.usefixtures("stored")
def test_an_unknown_external_id_is_not_found(client: TestClient, headers: dict[str, str]) -> None:
    body = assert_error(get(client, headers, "NOPE-1"), 404, "resource.not.found")
    assert "NOPE-1" in body["message"]


def test_another_organizations_transaction_is_not_found(
    client: TestClient, headers: dict[str, str], other_headers: dict[str, str], runtime: Runtime
) -> None:
    submit(client, headers, runtime, record("SAME", comments="acme"))
    submit(client, other_headers, runtime, record("SAME", comments="other"), record("THEIRS-ONLY"))

    assert get(client, headers, "SAME").json()["comments"] == "acme"
    assert get(client, other_headers, "SAME").json()["comments"] == "other"
    theirs = assert_error(get(client, headers, "THEIRS-ONLY"), 404, "resource.not.found")
    unknown = assert_error(get(client, headers, "NEVER-ANYWHERE"), 404, "resource.not.found")
    # The same answer as for an externalId that exists nowhere: nothing tells that another tenant has it.
    assert theirs["message"].replace("THEIRS-ONLY", "X") == unknown["message"].replace("NEVER-ANYWHERE", "X")
    assert get(client, other_headers, "THEIRS-ONLY").status_code == 200


@pytest.mark.usefixtures("stored")
def test_the_caller_must_be_authenticated(client: TestClient, headers: dict[str, str]) -> None:
    assert_error(client.get("/v1/transactions/PT-1"), 401, "gateway.authentication.failure")
    no_app_key = {"Authorization": headers["Authorization"]}
    assert_error(
        client.get("/v1/transactions/PT-1", headers=no_app_key), 401, "gateway.authentication.failure"
    )


def test_other_methods_are_not_allowed_and_get_is_named(client: TestClient, headers: dict[str, str]) -> None:
    answer = client.delete("/v1/transactions/PT-1", headers=headers)
    assert_error(answer, 405, "request.method.not.allowed")
    assert {m.strip() for m in answer.headers["allow"].split(",")} >= {"GET", "PATCH"}
