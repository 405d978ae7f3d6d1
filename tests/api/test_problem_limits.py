"""Problems are bounded: at most 20 per record (the 20th counting the rest), at most status_max_problems
in a status answer, which then says `"truncated": true`. The full list stays stored.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.storage.tables import job_problems
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

FIRST_MEMBERS = ["status", "batchId", "message", "validationMessage"]


def with_unknown_members(external_id: str, count: int) -> dict[str, Any]:
    return {**record(external_id), **{f"unknown{i:02d}": i for i in range(count)}}


def post_and_run(client: TestClient, headers: dict[str, str], runtime: Runtime, records: list[Any]) -> str:
    answer = client.post("/v1/transactions", json=records, headers=headers)
    assert answer.status_code == 202, answer.text
    runtime.new_worker().run_until_idle()
    return str(answer.headers["location"])


def stored_problems(runtime: Runtime) -> list[tuple[int, str, str]]:
    query = sa.select(job_problems.c.record_index, job_problems.c.field, job_problems.c.reason)
    with runtime.uow.read() as conn:
        return [tuple(row) for row in conn.execute(query.order_by(job_problems.c.id))]  # type: ignore[misc]


def test_a_big_batch_of_bad_records_has_a_bounded_status_answer(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    records = [with_unknown_members(f"U-{i}", 50) for i in range(2_000)]
    location = post_and_run(client, headers, runtime, records)
    began = time.perf_counter()
    answer = client.get(location, headers=headers)
    took = time.perf_counter() - began
    assert answer.status_code == 200
    body = answer.json()
    assert list(body)[:4] == FIRST_MEMBERS
    assert (body["status"], body["failedCount"]) == ("Failed", 2_000)
    assert len(body["validationMessage"]) == len(body["validationDetails"]) == 1_000
    assert body["truncated"] is True
    # Unbounded: 110,000 problems, 12.5 MB and a third of a second per read.
    assert len(answer.content) < 400_000
    assert took < 2
    # Each record keeps 20 problems, the last counting the 30 others; all of them stay stored.
    assert body["validationDetails"][19] == {
        "index": 0,
        "externalId": "U-0",
        "field": "unknown19",
        "reason": "unknown field; and 30 more problems",
    }
    assert body["validationDetails"][20]["index"] == 1
    assert len(stored_problems(runtime)) == 2_000 * 20


def test_a_record_with_20_problems_keeps_them_all(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    location = post_and_run(client, headers, runtime, [with_unknown_members("U-1", 20)])
    body = client.get(location, headers=headers).json()
    assert [d["reason"] for d in body["validationDetails"]] == ["unknown field"] * 20
    assert body["truncated"] is False


def test_an_answer_within_the_limit_is_not_truncated(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    location = post_and_run(client, headers, runtime, [record("OK-1"), record("BAD-1", amount="-1")])
    body = client.get(location, headers=headers).json()
    assert body["validationMessage"] == ["[1] externalId=BAD-1: amount: must be greater than 0"]
    assert body["truncated"] is False
    assert list(body)[-1] == "truncated"


@pytest.mark.parametrize(("bad", "truncated"), [(3, False), (4, True)])
def test_the_status_limit_is_a_setting(
    serve_with: Any, headers: dict[str, str], bad: int, truncated: bool
) -> None:
    served = serve_with(status_max_problems=3)
    records = [record(f"BAD-{i}", amount="-1") for i in range(bad)]
    location = post_and_run(served.client, headers, served.runtime, records)
    for _ in range(2):  # rendered, then kept: the same answer
        body = served.client.get(location, headers=headers).json()
        assert [d["externalId"] for d in body["validationDetails"]] == [f"BAD-{i}" for i in range(3)]
        assert body["truncated"] is truncated
    assert len(json.dumps(body["validationMessage"])) < 1_000
