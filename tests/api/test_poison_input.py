"""Poison input: one record no decoder or database can take is rejected alone, and a patch that could
not be read is a 400 naming why, never a failed batch or a 500.

Numbers Decimal cannot hold (exponents past ±10^18), integers longer than int() accepts, NUL in a
member name (which PostgreSQL cannot store in a problem), a member name given twice, lone surrogates.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from tests.conftest import assert_error
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

JSON_HEADERS = {"Content-Type": "application/json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def good(external_id: str) -> bytes:
    return json.dumps(record(external_id)).encode()


def with_member(external_id: str, member: bytes) -> bytes:
    """A valid record with one more member, written as raw JSON text (`"name": value`)."""
    return good(external_id)[:-1] + b", " + member + b"}"


def without_amount(external_id: str, member: bytes) -> bytes:
    text = json.dumps(record(external_id, amount=None)).encode()
    return text[:-1] + b", " + member + b"}"


POISON = {
    "huge exponent": (without_amount("BAD", b'"amount": 1e99999999999999999999'), "amount"),
    "tiny exponent": (without_amount("BAD", b'"amount": 1e-99999999999999999999'), "amount"),
    "5001-digit integer": (without_amount("BAD", b'"amount": 1' + b"0" * 5000), "amount"),
    "huge exponent elsewhere": (with_member("BAD", b'"comments": [-1E+99999999999999999999]'), "comments"),
    "NUL in a member name": (with_member("BAD", rb'"x\u0000y": 1'), "x\ufffdy"),
    "repeated member": (without_amount("BAD", b'"amount": "-5", "amount": "5"'), "amount"),
    "repeated member spelt apart": (without_amount("BAD", rb'"amount": "-5", "\u0061mount": "5"'), "amount"),
}


def run_jobs(runtime: Runtime) -> None:
    runtime.new_worker().run_until_idle()


def status(client: TestClient, headers: dict[str, str], answer: Any) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = client.get(answer.headers["location"], headers=headers).json()
    return body


@pytest.mark.parametrize("poison", list(POISON))
def test_one_poison_record_is_rejected_alone(
    client: TestClient, headers: dict[str, str], runtime: Runtime, poison: str
) -> None:
    text, field = POISON[poison]
    batch = b"[" + b",".join([good("OK-1"), text, good("OK-2")]) + b"]"
    answer = client.post("/v1/transactions", content=batch, headers={**headers, **JSON_HEADERS})
    run_jobs(runtime)
    job = status(client, headers, answer)
    assert job["status"] == "Partially Completed", job
    assert job["message"] == "Partially Completed: 2 of 3 transactions created; 1 rejected"
    assert {(d["index"], d["externalId"], d["field"]) for d in job["validationDetails"]} == {
        (1, "BAD", field)
    }


def test_every_poison_record_of_a_batch_is_named(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    texts = [text.replace(b'"BAD"', f'"BAD-{i}"'.encode()) for i, (text, _) in enumerate(POISON.values())]
    batch = b"[" + b",".join([good("OK-1"), *texts]) + b"]"
    answer = client.post("/v1/transactions", content=batch, headers={**headers, **JSON_HEADERS})
    run_jobs(runtime)
    job = status(client, headers, answer)
    assert job["failedCount"] == len(POISON)
    expected = {(i + 1, f"BAD-{i}", field) for i, (_, field) in enumerate(POISON.values())}
    assert {(d["index"], d["externalId"], d["field"]) for d in job["validationDetails"]} == expected


def test_a_repeated_member_is_named_not_silently_dropped(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    text = without_amount("TWICE", b'"amount": "-5", "amount": "5"')
    answer = client.post("/v1/transactions", content=b"[" + text + b"]", headers={**headers, **JSON_HEADERS})
    run_jobs(runtime)
    job = status(client, headers, answer)
    assert job["status"] == "Failed"
    assert job["validationMessage"] == ["[0] externalId=TWICE: amount: duplicate member"]


@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/transfers"])
@pytest.mark.parametrize("escape", [rb"\ud800", rb"\udfff", rb"\ud83d x"])
def test_a_lone_surrogate_in_a_batch_is_400_naming_it(
    client: TestClient, headers: dict[str, str], path: str, escape: bytes
) -> None:
    batch = b'[{"comments": "a' + escape + b'"}]'
    body = assert_error(
        client.post(path, content=batch, headers={**headers, **JSON_HEADERS}),
        400,
        "request.validation.failure",
    )
    (detail,) = body["errors"]
    assert detail["field"] == "body"
    lone = escape[:6].decode()
    assert detail["reason"] == (
        f"is not valid JSON: {lone} at byte {batch.index(escape)} is a lone UTF-16 surrogate, not a character"
    )


# --- PATCH ---------------------------------------------------------------------------------------


@pytest.fixture
def stored(client: TestClient, headers: dict[str, str], runtime: Runtime) -> str:
    answer = client.post("/v1/transactions", json=[record("PT-1")], headers=headers)
    assert answer.status_code == 202, answer.text
    run_jobs(runtime)
    return "PT-1"


def patch(client: TestClient, headers: dict[str, str], body: bytes, kind: dict[str, str]) -> Any:
    return client.patch("/v1/transactions/PT-1", content=body, headers={**headers, **kind})


@pytest.mark.parametrize(
    ("body", "kind", "field", "reason"),
    [
        (
            b'{"amount": 1e99999999999999999999}',
            MERGE,
            "body",
            "holds the number 1e99999999999999999999, whose exponent is too large for an exact decimal",
        ),
        (
            b'[{"op": "replace", "path": "/amount", "value": 1e-99999999999999999999}]',
            JSON_PATCH,
            "body",
            "holds the number 1e-99999999999999999999, whose exponent is too large for an exact decimal",
        ),
        (
            b'{"amount": 1' + b"0" * 5000 + b"}",
            MERGE,
            "body",
            "holds an integer of more than 4300 digits; send such a number as a string or with an exponent",
        ),
        (
            b'[{"op": {"replace": 1}, "path": "/amount", "value": "5"}]',
            JSON_PATCH,
            "body[0].op",
            "must be one of: add, remove, replace, move, copy, test",
        ),
        (
            b'[{"op": ["copy"], "path": "/comments", "from": "/amount"}]',
            JSON_PATCH,
            "body[0].op",
            "must be one of: add, remove, replace, move, copy, test",
        ),
        (
            rb'{"comments": "\ud800"}',
            MERGE,
            "body",
            "is not valid JSON: \\ud800 at byte 14 is a lone UTF-16 surrogate, not a character",
        ),
        (
            b'{"amount": "-5", "amount": "5"}',
            MERGE,
            "body",
            'must not repeat a member name in one object; repeated: "amount"',
        ),
        (
            rb'[{"op": "remove", "path": "/comments", "op": "add", "value": 1, "\u006fp": "test"}]',
            JSON_PATCH,
            "body",
            'must not repeat a member name in one object; repeated: "op"',
        ),
    ],
)
def test_a_patch_that_cannot_be_read_is_400_naming_why(
    client: TestClient,
    headers: dict[str, str],
    stored: str,
    body: bytes,
    kind: dict[str, str],
    field: str,
    reason: str,
) -> None:
    error = assert_error(patch(client, headers, body, kind), 400, "request.validation.failure")
    assert error["errors"] == [{"field": field, "location": "body", "reason": reason}]


def test_more_patch_operations_than_the_setting_is_400(serve_with: Any, headers: dict[str, str]) -> None:
    served = serve_with(max_patch_operations=3)
    assert served.client.post("/v1/transactions", json=[record("PT-1")], headers=headers).status_code == 202
    run_jobs(served.runtime)
    operation = {"op": "test", "path": "/status", "value": "Active"}
    three = served.client.patch(
        "/v1/transactions/PT-1", content=json.dumps([operation] * 3), headers={**headers, **JSON_PATCH}
    )
    assert three.status_code == 202, three.text
    four = served.client.patch(
        "/v1/transactions/PT-1", content=json.dumps([operation] * 4), headers={**headers, **JSON_PATCH}
    )
    error = assert_error(four, 400, "request.validation.failure")
    assert error["errors"] == [
        {"field": "body", "location": "body", "reason": "must contain at most 3 operations; got 4"}
    ]


def test_a_merge_patch_with_a_nul_member_name_fails_its_job_with_a_message(
    client: TestClient, headers: dict[str, str], runtime: Runtime, stored: str
) -> None:
    answer = patch(client, headers, rb'{"x\u0000": 1}', MERGE)
    run_jobs(runtime)
    job = status(client, headers, answer)
    assert job["status"] == "Failed"
    assert job["validationDetails"] == [
        {"index": 0, "externalId": "PT-1", "field": "x\ufffd", "reason": "unknown field"}
    ]
