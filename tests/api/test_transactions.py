"""PATCH and GET /v1/transactions over HTTP: modification jobs, listing, paging links, tenancy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jsonpatch
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.domain.transactions import to_json, validate_record
from tests.conftest import assert_error
from tests.support import record

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def post(client: TestClient, headers: dict[str, str], records: list[dict[str, Any]]) -> str:
    answer = client.post("/v1/transactions", json=records, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["jobStatusQueryKey"])


def patch(
    client: TestClient, headers: dict[str, str], external_id: str, body: Any, kind: dict[str, str]
) -> Any:
    return client.patch(
        f"/v1/transactions/{external_id}", content=msgspec.json.encode(body), headers={**headers, **kind}
    )


def status(client: TestClient, headers: dict[str, str], key: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/jobs/insight/status/{key}", headers=headers).json()
    return body


def listed(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/transactions", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def one(client: TestClient, headers: dict[str, str], external_id: str) -> dict[str, Any]:
    results = listed(client, headers, externalId=external_id)["data"]["results"]
    assert len(results) == 1
    return dict(results[0])


EXACT = msgspec.json.Decoder(float_hook=Decimal)


def exact(client: TestClient, headers: dict[str, str], external_id: str) -> dict[str, Any]:
    """The listed record with numbers decoded exactly, as Decimal."""
    answer = client.get("/v1/transactions", params={"externalId": external_id}, headers=headers)
    return dict(EXACT.decode(answer.content)["data"]["results"][0])


@pytest.fixture
def stored(client: TestClient, headers: dict[str, str], runtime: Runtime) -> str:
    post(client, headers, [record("PT-1", amount="100.50", comments="hello")])
    runtime.new_worker().run_until_idle()
    return "PT-1"


def test_list_answer_shape_and_exact_amounts(
    client: TestClient, headers: dict[str, str], stored: str
) -> None:
    answer = client.get("/v1/transactions", headers=headers)
    assert b'"amount":100.5' in answer.content  # a JSON number, digits as stored, never through a float
    body = answer.json()
    assert list(body) == ["data", "paging"]
    cursor = body["paging"]["cursors"]["after"]
    assert body["paging"] == {
        "totalCount": 1,
        "limit": 25,
        "cursors": {"before": cursor, "after": cursor},  # opaque, and the same row's on a one-row page
        "next": None,
        "previous": None,
    }
    assert len(cursor) == 48
    row = body["data"]["results"][0]
    assert row["externalId"] == "PT-1"
    assert row["status"] == "Active"
    assert row["createDate"].endswith("-05:00")  # the fake clock is in January
    assert row["createDate"] == row["changeDate"]


def test_paging_links_walk_the_whole_listing(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    post(client, headers, [record(f"L-{i:02d}", productExternalId="P") for i in range(7)])
    runtime.new_worker().run_until_idle()
    seen: list[str] = []
    url: str | None = "/v1/transactions?productExternalId=P&limit=3"
    while url:
        body = client.get(url, headers=headers).json()
        seen += [r["externalId"] for r in body["data"]["results"]]
        url = body["paging"]["next"]
    assert seen == [f"L-{i:02d}" for i in range(7)]
    assert body["paging"]["previous"].startswith("/v1/transactions?productExternalId=P&limit=3&before=")
    last = body["paging"]["cursors"]["after"]
    before_last = listed(client, headers, productExternalId="P", limit=3, before=last)["data"]["results"]
    assert [r["externalId"] for r in before_last] == ["L-03", "L-04", "L-05"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "51"}, "limit"),
        ({"limit": "zero"}, "limit"),
        ({"after": "not-base64!"}, "after"),
        ({"status": "Open"}, "status"),
        ({"type": "new subscription"}, "type"),
        ({"createStartDate": "2026-13-01"}, "createStartDate"),
        ({"changeEndDate": "15/01/2026"}, "changeEndDate"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_list_parameters_answer_400_naming_them(
    client: TestClient, headers: dict[str, str], params: dict[str, str], field: str
) -> None:
    body = assert_error(
        client.get("/v1/transactions", params=params, headers=headers), 400, "request.validation.failure"
    )
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["errors"][0]["location"] == "query"


def test_modify_then_read_back(
    client: TestClient, headers: dict[str, str], runtime: Runtime, stored: str
) -> None:
    answer = patch(
        client, headers, stored, [{"op": "replace", "path": "/amount", "value": "75.25"}], JSON_PATCH
    )
    assert answer.status_code == 202
    assert answer.headers["location"] == f"/v1/jobs/insight/status/{answer.json()['jobStatusQueryKey']}"
    runtime.new_worker().run_until_idle()
    assert status(client, headers, answer.json()["jobStatusQueryKey"])["status"] == "Completed"
    assert one(client, headers, stored)["amount"] == 75.25


def test_cancel_then_modification_is_rejected(
    client: TestClient, headers: dict[str, str], runtime: Runtime, stored: str
) -> None:
    cancel = patch(client, headers, stored, {"status": "Cancel"}, MERGE).json()["jobStatusQueryKey"]
    runtime.new_worker().run_until_idle()
    assert status(client, headers, cancel)["message"] == "Completed: transaction PT-1 cancelled"
    again = patch(client, headers, stored, {"comments": "too late"}, {"Content-Type": "application/json"})
    assert again.status_code == 202
    runtime.new_worker().run_until_idle()
    verdict = status(client, headers, again.json()["jobStatusQueryKey"])
    assert verdict["status"] == "Failed"
    assert verdict["validationMessage"] == [
        "[0] externalId=PT-1: status: the transaction is cancelled and cannot be modified"
    ]
    row = one(client, headers, stored)
    assert (row["status"], row["comments"]) == ("Cancel", "hello")
    assert listed(client, headers, status="Cancel")["paging"]["totalCount"] == 1


def test_patch_request_errors(client: TestClient, headers: dict[str, str], stored: str) -> None:
    assert_error(patch(client, headers, "NOPE", {"comments": "x"}, MERGE), 404, "resource.not.found")
    assert_error(
        patch(client, headers, stored, {"comments": "x"}, {"Content-Type": "text/plain"}),
        415,
        "request.unsupported.media.type",
    )
    assert_error(
        patch(client, headers, stored, [{"op": "jump", "path": "/x"}], JSON_PATCH),
        400,
        "request.validation.failure",
    )
    bad_json = client.patch(f"/v1/transactions/{stored}", content=b"{", headers={**headers, **MERGE})
    assert_error(bad_json, 400, "request.validation.failure")


def test_organizations_never_see_or_change_each_other(
    client: TestClient, headers: dict[str, str], other_headers: dict[str, str], runtime: Runtime
) -> None:
    mine = post(client, headers, [record("SAME", comments="acme")])
    theirs = post(client, other_headers, [record("SAME", comments="other")])
    runtime.new_worker().run_until_idle()
    assert status(client, headers, mine)["status"] == "Completed"
    assert status(client, other_headers, theirs)["status"] == "Completed"
    assert one(client, headers, "SAME")["comments"] == "acme"
    assert one(client, other_headers, "SAME")["comments"] == "other"
    assert_error(client.get(f"/v1/jobs/insight/status/{theirs}", headers=headers), 404, "resource.not.found")
    post(client, other_headers, [record("THEIRS-ONLY")])
    runtime.new_worker().run_until_idle()
    assert_error(patch(client, headers, "THEIRS-ONLY", {"comments": "x"}, MERGE), 404, "resource.not.found")
    assert listed(client, headers)["paging"]["totalCount"] == 1
    changed = patch(client, headers, "SAME", {"comments": "changed"}, MERGE)
    runtime.new_worker().run_until_idle()
    assert status(client, headers, changed.json()["jobStatusQueryKey"])["status"] == "Completed"
    assert one(client, other_headers, "SAME")["comments"] == "other"


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=64)
_OPERATIONS = st.lists(
    st.one_of(
        st.builds(lambda v: {"op": "replace", "path": "/comments", "value": v}, _TEXT),
        st.builds(lambda v: {"op": "add", "path": "/contactExternalId", "value": v}, _TEXT),
        st.just({"op": "remove", "path": "/comments"}),
        st.builds(
            lambda v: {"op": "replace", "path": "/amount", "value": str(v)},
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2),
        ),
        st.sampled_from(["USD", "EUR", "JPY"]).map(
            lambda c: {"op": "replace", "path": "/currency", "value": c}
        ),
        st.just({"op": "copy", "from": "/investorExternalId", "path": "/contactExternalId"}),
        st.just({"op": "test", "path": "/externalId", "value": "PT-1"}),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=_OPERATIONS)
def test_a_patch_through_the_api_equals_the_patch_applied_locally(
    client: TestClient,
    headers: dict[str, str],
    runtime: Runtime,
    stored: str,
    operations: list[dict[str, Any]],
) -> None:
    before = exact(client, headers, stored)
    local_doc = {k: v for k, v in before.items() if k not in ("createDate", "changeDate")}
    try:
        expected_doc = jsonpatch.apply_patch(local_doc, operations)
    except jsonpatch.JsonPatchException:
        expected_doc = None
    key = patch(client, headers, stored, operations, JSON_PATCH).json()["jobStatusQueryKey"]
    runtime.new_worker().run_until_idle()
    after = exact(client, headers, stored)
    expected = validate_record(expected_doc, for_update=True) if expected_doc is not None else None
    if expected is None or isinstance(expected, list):
        assert status(client, headers, key)["status"] == "Failed"
        assert after == before
        return
    assert status(client, headers, key)["status"] == "Completed"
    got = {k: v for k, v in after.items() if k not in ("createDate", "changeDate")}
    assert got == EXACT.decode(msgspec.json.Encoder(decimal_format="number").encode(to_json(expected)))
