"""Submitting batches: `POST /v1/transactions` (spec 3.2) and `POST /v1/transfers` (spec 3.3)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from tests.conftest import assert_error
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

ROUTES = ["/v1/transactions", "/v1/transfers"]
KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}==")


def transfer(external_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid Full Transfer record."""
    return record(external_id, type="Full Transfer", amount=None, toInvestorExternalId="INV-2", **overrides)


def valid_for(path: str, external_id: str) -> dict[str, Any]:
    return transfer(external_id) if path == "/v1/transfers" else record(external_id)


def job_count(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM jobs").scalar_one())


def stored(runtime: Runtime) -> list[tuple[str, str, Decimal | None]]:
    """(organization, externalId, amount) of every stored transaction, in creation order."""
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT o.name, t.external_id, t.amount FROM transactions t "
                "JOIN organizations o ON o.id = t.org_id ORDER BY t.id"
            )
        ).all()
    return [(r[0], r[1], None if r[2] is None else Decimal(str(r[2]))) for r in rows]


def run_jobs(runtime: Runtime) -> int:
    return runtime.new_worker().run_until_idle()


def status_of(client: TestClient, headers: dict[str, str], accepted: Any) -> dict[str, Any]:
    answer = client.get(accepted.headers["location"], headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# --- accepted --------------------------------------------------------------------------------------


def assert_accepted(answer: Any) -> tuple[str, str]:
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert list(body) == ["jobStatusQueryKey", "batchId"]
    key, batch_id = body["jobStatusQueryKey"], body["batchId"]
    assert KEY_SHAPE.fullmatch(key), key
    assert isinstance(batch_id, str)
    assert batch_id.isdecimal()
    assert answer.headers["location"] == f"/v1/jobs/insight/status/{key}"
    return key, batch_id


@pytest.mark.parametrize("path", ROUTES)
def test_single_object_is_accepted(client: TestClient, headers: dict[str, str], path: str) -> None:
    answer = client.post(path, json=valid_for(path, "ONE-1"), headers=headers)
    _, batch_id = assert_accepted(answer)
    body = status_of(client, headers, answer)
    assert body["status"] == "Submitted"
    assert body["batchId"] == batch_id
    assert body["recordCount"] == 1


@pytest.mark.parametrize("path", ROUTES)
def test_array_is_accepted(client: TestClient, headers: dict[str, str], path: str) -> None:
    batch = [valid_for(path, f"ARR-{i}") for i in range(3)]
    answer = client.post(path, json=batch, headers=headers)
    assert_accepted(answer)
    assert status_of(client, headers, answer)["recordCount"] == 3


def test_batch_ids_come_from_a_sequence(client: TestClient, headers: dict[str, str]) -> None:
    ids = [int(assert_accepted(client.post(p, json=valid_for(p, "SEQ"), headers=headers))[1]) for p in ROUTES]
    assert ids[1] > ids[0]
    keys = {assert_accepted(client.post(ROUTES[0], json=record("SEQ"), headers=headers))[0] for _ in range(3)}
    assert len(keys) == 3


def test_job_is_committed_before_the_answer(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    body = json.dumps([record("DUR-1"), record("DUR-2")]).encode()
    answer = client.post(
        "/v1/transactions", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    key, batch_id = assert_accepted(answer)
    # A brand-new engine: its connection can only see what was committed.
    engine = sa.create_engine(runtime.settings.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT id, status, record_count, payload, kind FROM jobs WHERE key = :key"),
                {"key": key},
            ).one()
    finally:
        engine.dispose()
    assert row[0] == int(batch_id)
    assert row[1] == "Submitted"
    assert row[2] == 2
    assert bytes(row[3]) == body
    assert row[4] == "create"


@pytest.mark.parametrize("path", ROUTES)
def test_pretty_printed_json_is_accepted(
    client: TestClient, runtime: Runtime, headers: dict[str, str], path: str
) -> None:
    batch = [valid_for(path, "PRETTY-1"), valid_for(path, "PRETTY-2")]
    body = ("\n  " + json.dumps(batch, indent=4) + "\n").encode()
    answer = client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
    assert_accepted(answer)
    assert run_jobs(runtime) == 1
    assert status_of(client, headers, answer)["status"] == "Completed"


def test_json_content_type_with_charset_is_accepted(client: TestClient, headers: dict[str, str]) -> None:
    answer = client.post(
        "/v1/transactions",
        content=json.dumps(record("CS-1")).encode(),
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert_accepted(answer)


# --- the `state` query parameter -------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUTES)
def test_state_pending_is_accepted(client: TestClient, headers: dict[str, str], path: str) -> None:
    key, _ = assert_accepted(
        client.post(f"{path}?state=pending", json=valid_for(path, "ST-1"), headers=headers)
    )
    assert key


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("state", ["Pending", "active", "PENDING", "", "pending,active"])
def test_other_state_is_400(
    client: TestClient, runtime: Runtime, headers: dict[str, str], path: str, state: str
) -> None:
    answer = client.post(path, params={"state": state}, json=valid_for(path, "ST-2"), headers=headers)
    body = assert_error(answer, 400, "request.validation.failure")
    assert [(e["field"], e["location"]) for e in body["errors"]] == [("state", "query")]
    assert job_count(runtime) == 0


# --- malformed bodies ------------------------------------------------------------------------------

BAD_BODIES = {
    "not JSON": b"this is not json",
    "truncated JSON": b'[{"externalId": "A-1"',
    "empty body": b"",
    "whitespace only": b"  \n ",
    "a number": b"42",
    "a string": b'"A-1"',
    "null": b"null",
    "true": b"true",
    "empty array": b"[]",
    "array of a number": b"[1]",
    "object then number": b'[{"externalId": "A-1"}, 2]',
    "array of arrays": b'[[{"externalId": "A-1"}]]',
    "array with null": b'[{"externalId": "A-1"}, null]',
    "two documents": b'{"externalId": "A-1"} {"externalId": "A-2"}',
}


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_body_is_400_naming_body(
    client: TestClient, runtime: Runtime, headers: dict[str, str], path: str, case: str
) -> None:
    answer = client.post(
        path, content=BAD_BODIES[case], headers={**headers, "Content-Type": "application/json"}
    )
    body = assert_error(answer, 400, "request.validation.failure")
    assert [(e["field"], e["location"]) for e in body["errors"]] == [("body", "body")]
    assert job_count(runtime) == 0


@pytest.mark.parametrize("path", ROUTES)
def test_too_many_records_is_400(serve_with: Any, headers: dict[str, str], path: str) -> None:
    served = serve_with(max_batch_records=2)
    two = [valid_for(path, f"MAX-{i}") for i in range(2)]
    assert_accepted(served.client.post(path, json=two, headers=headers))
    three = [*two, valid_for(path, "MAX-2")]
    body = assert_error(
        served.client.post(path, json=three, headers=headers), 400, "request.validation.failure"
    )
    assert [(e["field"], e["location"]) for e in body["errors"]] == [("body", "body")]
    assert job_count(served.runtime) == 1


def _padded_to(size: int, path: str) -> bytes:
    """A valid one-record body of exactly `size` bytes."""
    body = json.dumps([valid_for(path, "BIG-1")]).encode()
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"]"


@pytest.mark.parametrize("path", ROUTES)
def test_body_over_the_size_limit_is_413(serve_with: Any, headers: dict[str, str], path: str) -> None:
    served = serve_with(max_body_bytes=300)
    json_headers = {**headers, "Content-Type": "application/json"}
    assert_accepted(served.client.post(path, content=_padded_to(300, path), headers=json_headers))
    answer = served.client.post(path, content=_padded_to(301, path), headers=json_headers)
    assert_error(answer, 413, "request.too.large")
    assert job_count(served.runtime) == 1


@pytest.mark.parametrize("path", ROUTES)
def test_streamed_body_over_the_size_limit_is_413(
    serve_with: Any, headers: dict[str, str], path: str
) -> None:
    served = serve_with(max_body_bytes=300)
    body = _padded_to(301, path)

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield body[:200]
        yield body[200:]

    answer = served.client.post(
        path, content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert_error(answer, 413, "request.too.large")
    assert job_count(served.runtime) == 0


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", "text/json", None]
)
def test_other_content_type_is_415(
    client: TestClient, runtime: Runtime, headers: dict[str, str], path: str, content_type: str | None
) -> None:
    request_headers = dict(headers)
    if content_type is not None:
        request_headers["Content-Type"] = content_type
    answer = client.post(path, content=json.dumps(valid_for(path, "CT-1")).encode(), headers=request_headers)
    assert_error(answer, 415, "request.unsupported.media.type")
    assert job_count(runtime) == 0


# --- what the worker does with the records ---------------------------------------------------------


def test_valid_records_are_stored_even_when_others_are_rejected(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    batch = [record("MIX-1"), record("MIX-2", amount="-1"), record("MIX-3", amount="7.25")]
    answer = client.post("/v1/transactions", json=batch, headers=headers)
    assert_accepted(answer)
    assert stored(runtime) == []  # nothing is applied before a worker runs
    assert run_jobs(runtime) == 1
    assert stored(runtime) == [("acme", "MIX-1", Decimal("100.50")), ("acme", "MIX-3", Decimal("7.25"))]
    body = status_of(client, headers, answer)
    assert body["status"] == "Partially Completed"
    assert body["validationMessage"] == ["[1] externalId=MIX-2: amount: must be greater than 0"]


def test_transfers_accept_both_transfer_types(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    batch = [
        transfer("TR-1"),
        record("TR-2", type="Partial Transfer", amount="10", toProductExternalId="FUND-B"),
    ]
    answer = client.post("/v1/transfers", json=batch, headers=headers)
    assert_accepted(answer)
    run_jobs(runtime)
    assert status_of(client, headers, answer)["status"] == "Completed"
    assert [row[1] for row in stored(runtime)] == ["TR-1", "TR-2"]


def test_transfers_reject_a_record_that_is_not_a_transfer(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    batch = [transfer("TR-1"), record("SUB-1"), record("RED-1", type="Full Redemption", amount=None)]
    answer = client.post("/v1/transfers", json=batch, headers=headers)
    assert_accepted(answer)
    run_jobs(runtime)
    body = status_of(client, headers, answer)
    assert body["status"] == "Partially Completed"
    assert [row[1] for row in stored(runtime)] == ["TR-1"]
    messages = body["validationMessage"]
    assert len(messages) == 2
    assert messages[0].startswith("[1] externalId=SUB-1: type: ")
    assert messages[1].startswith("[2] externalId=RED-1: type: ")
    assert "Transfer" in messages[0]


def test_record_repeating_an_external_id_within_the_batch_is_rejected(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    batch = [record("REP-1"), record("REP-2"), record("REP-1", amount="5")]
    answer = client.post("/v1/transactions", json=batch, headers=headers)
    run_jobs(runtime)
    body = status_of(client, headers, answer)
    assert body["status"] == "Partially Completed"
    assert stored(runtime) == [("acme", "REP-1", Decimal("100.50")), ("acme", "REP-2", Decimal("100.50"))]
    assert len(body["validationMessage"]) == 1
    assert body["validationMessage"][0].startswith("[2] externalId=REP-1: externalId: ")


def test_record_whose_external_id_exists_in_the_organization_is_rejected(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    client.post("/v1/transactions", json=record("OLD-1"), headers=headers)
    run_jobs(runtime)
    answer = client.post(
        "/v1/transactions", json=[record("OLD-1", amount="9"), record("NEW-1")], headers=headers
    )
    run_jobs(runtime)
    body = status_of(client, headers, answer)
    assert body["status"] == "Partially Completed"
    assert len(body["validationMessage"]) == 1
    assert body["validationMessage"][0].startswith("[0] externalId=OLD-1: externalId: ")
    # The existing transaction is untouched.
    assert stored(runtime) == [("acme", "OLD-1", Decimal("100.50")), ("acme", "NEW-1", Decimal("100.50"))]


def test_same_external_id_in_two_organizations_is_fine(
    client: TestClient, runtime: Runtime, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    mine = client.post("/v1/transactions", json=record("SHARED-1"), headers=headers)
    theirs = client.post("/v1/transactions", json=record("SHARED-1", amount="3"), headers=other_headers)
    assert run_jobs(runtime) == 2
    assert status_of(client, headers, mine)["status"] == "Completed"
    assert status_of(client, other_headers, theirs)["status"] == "Completed"
    assert sorted(stored(runtime)) == [
        ("acme", "SHARED-1", Decimal("100.50")),
        ("other", "SHARED-1", Decimal("3.00")),
    ]
