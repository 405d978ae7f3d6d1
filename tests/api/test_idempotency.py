"""Idempotency-Key: a retried POST or PATCH answers with the job its first attempt made."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.storage import jobs as job_repo
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


def test_a_key_reused_for_another_request_is_422(client: TestClient, headers: dict[str, str]) -> None:
    client.post("/v1/transactions", json=[record("I-1")], headers={**headers, "Idempotency-Key": "k"})
    answer = client.post(
        "/v1/transactions", json=[record("I-2")], headers={**headers, "Idempotency-Key": "k"}
    )
    body = assert_error(answer, 422, "idempotency.key.reused")
    assert body["errors"] == [
        {
            "field": "Idempotency-Key",
            "location": "header",
            "reason": "was already used with a different request",
        }
    ]
    moved = client.post("/v1/transfers", json=[record("I-1")], headers={**headers, "Idempotency-Key": "k"})
    assert_error(moved, 422, "idempotency.key.reused")


def test_a_key_reused_for_a_patch_is_422(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    client.post("/v1/transactions", json=[record("I-1")], headers=headers)
    runtime.new_worker().run_until_idle()
    patch_headers = {**headers, "Idempotency-Key": "p", "Content-Type": "application/merge-patch+json"}
    first = client.patch("/v1/transactions/I-1", content=b'{"comments": "a"}', headers=patch_headers)
    other = client.patch("/v1/transactions/I-1", content=b'{"comments": "b"}', headers=patch_headers)
    assert first.status_code == 202
    assert_error(other, 422, "idempotency.key.reused")


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


class HeldInsert:
    """Holds the first job insert inside its transaction until released: a request still being stored."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.armed = True

    def wrap(self, insert: Any) -> Any:
        def held(*args: Any, **kwargs: Any) -> Any:
            if self.armed:
                self.armed = False
                self.inside.set()
                assert self.release.wait(10), "never released"
            return insert(*args, **kwargs)

        return held


@pytest.fixture
def held_insert(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldInsert]:
    held = HeldInsert()
    monkeypatch.setattr(job_repo, "insert_job", held.wrap(job_repo.insert_job))
    yield held
    held.release.set()


def test_a_key_whose_first_request_is_still_being_stored_is_409(
    client: TestClient, headers: dict[str, str], runtime: Runtime, held_insert: HeldInsert
) -> None:
    keyed = {**headers, "Idempotency-Key": "k-busy"}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/v1/transactions", json=[record("I-1")], headers=keyed)
        assert held_insert.inside.wait(10)
        same = client.post("/v1/transactions", json=[record("I-1")], headers=keyed)
        different = client.post("/v1/transactions", json=[record("I-2")], headers=keyed)
        held_insert.release.set()
        stored: httpx.Response = first.result(10)
    for answer in (same, different):
        body = assert_error(answer, 409, "idempotency.key.in.use")
        assert body["errors"][0]["field"] == "Idempotency-Key"
        assert answer.headers["retry-after"] == "1"
    assert stored.status_code == 202, stored.text
    again = client.post("/v1/transactions", json=[record("I-1")], headers=keyed)
    assert again.status_code == 202
    assert again.json() == stored.json()
    assert job_count(runtime) == 1


def test_a_patch_with_a_key_still_being_stored_is_409(
    client: TestClient, headers: dict[str, str], runtime: Runtime, held_insert: HeldInsert
) -> None:
    held_insert.armed = False
    client.post("/v1/transactions", json=[record("I-1")], headers=headers)
    runtime.new_worker().run_until_idle()
    held_insert.armed = True
    keyed = {**headers, "Idempotency-Key": "p-busy"}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/v1/transactions", json=[record("I-2")], headers=keyed)
        assert held_insert.inside.wait(10)
        patch = client.patch(
            "/v1/transactions/I-1",
            content=b'{"comments": "x"}',
            headers={**keyed, "Content-Type": "application/merge-patch+json"},
        )
        held_insert.release.set()
        assert first.result(10).status_code == 202
    assert_error(patch, 409, "idempotency.key.in.use")
