"""Idempotency-Key: a retried POST or PATCH answers with the job its first attempt made."""

from __future__ import annotations

import msgspec
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.storage.tables import jobs
from tests.conftest import assert_error
from tests.support import record


def job_count(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one())


def test_a_retried_post_gets_the_same_job(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    first = client.post(
        "/v1/transactions", json=[record("I-1")], headers={**headers, "Idempotency-Key": "k-1"}
    )
    again = client.post(
        "/v1/transactions", json=[record("I-1")], headers={**headers, "Idempotency-Key": "k-1"}
    )
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert job_count(runtime) == 1
    other = client.post(
        "/v1/transactions", json=[record("I-1")], headers={**headers, "Idempotency-Key": "k-2"}
    )
    assert other.json()["jobStatusQueryKey"] != first.json()["jobStatusQueryKey"]
    assert job_count(runtime) == 2


def test_a_key_reused_for_another_request_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    client.post("/v1/transactions", json=[record("I-1")], headers={**headers, "Idempotency-Key": "k"})
    answer = client.post(
        "/v1/transactions", json=[record("I-2")], headers={**headers, "Idempotency-Key": "k"}
    )
    body = assert_error(answer, 400, "request.validation.failure")
    assert body["errors"][0]["field"] == "Idempotency-Key"
    moved = client.post("/v1/transfers", json=[record("I-1")], headers={**headers, "Idempotency-Key": "k"})
    assert_error(moved, 400, "request.validation.failure")


def test_keys_are_per_application(
    client: TestClient, headers: dict[str, str], other_headers: dict[str, str], runtime: Runtime
) -> None:
    mine = client.post("/v1/transactions", json=[record("I-1")], headers={**headers, "Idempotency-Key": "k"})
    theirs = client.post(
        "/v1/transactions", json=[record("I-1")], headers={**other_headers, "Idempotency-Key": "k"}
    )
    assert mine.json()["jobStatusQueryKey"] != theirs.json()["jobStatusQueryKey"]
    assert job_count(runtime) == 2


def test_a_retried_patch_gets_the_same_job(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    client.post("/v1/transactions", json=[record("I-1")], headers=headers)
    runtime.new_worker().run_until_idle()
    patch_headers = {**headers, "Idempotency-Key": "p", "Content-Type": "application/merge-patch+json"}
    body = msgspec.json.encode({"comments": "once"})
    first = client.patch("/v1/transactions/I-1", content=body, headers=patch_headers)
    again = client.patch("/v1/transactions/I-1", content=body, headers=patch_headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()


def test_a_malformed_key_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    answer = client.post(
        "/v1/transactions", json=[record("I-1")], headers={**headers, "Idempotency-Key": "x" * 256}
    )
    assert_error(answer, 400, "request.validation.failure")
